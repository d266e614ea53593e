"""``realness describe``: describe images with a describer and write the RAISE-TD CSV layout."""

from __future__ import annotations

import argparse
import sys

import torch
from tqdm import tqdm

from realness.cli.common import (
    add_describer_argument,
    add_descriptions_arguments,
    add_runtime_arguments,
    add_table_output_argument,
    build_describer_from_args,
    check_batch_size,
    expand_image_paths,
    match_descriptions,
    report_failures,
    report_scan,
    show_progress,
)
from realness.cli.engine import add_engine_arguments, run_describe_on_ray
from realness.cli.resumable import ResumableRun, add_resume_argument, check_resume, journal_for
from realness.describers.base import summarize_descriptions
from realness.errors import SkippedItem, UsageError
from realness.io.schema import DESCRIBE_COLUMNS as COLUMNS
from realness.io.tables import check_output_path
from realness.runtime.device import resolve_device
from realness.text.verdict import parse_verdict

DEFAULT_DESCRIBER = "openai"
#: Images handed to the describer per step unless --batch-size says otherwise: progress
#: shows and the cache fills as it goes.
DEFAULT_STEP = 32


def register(subparsers) -> None:
    """Add the ``describe`` subcommand."""
    parser = subparsers.add_parser(
        "describe",
        help="describe what looks unrealistic in images (writes path,description,verdict,error)",
        description="Ask a describer what looks unrealistic in each image and write a table "
        "(path,description,verdict,error; path is each image's path as given, which realness score "
        "--descriptions matches; add a mos column to train on it). Failed images are listed on stderr "
        "and keep a row with the reason in error.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, directories or globs")
    add_describer_argument(parser, default=DEFAULT_DESCRIBER)
    parser.add_argument(
        "--model", metavar="NAME",
        help="the describer's model: --describer openai --model gpt-4.1-mini is --describer openai:gpt-4.1-mini "
        "(also openai:@URL and vlm)",
    )
    add_descriptions_arguments(
        parser, help="descriptions already written: those images are not described again, their rows are kept"
    )
    add_table_output_argument(parser, what="the descriptions")
    parser.add_argument(
        "--concurrency", type=int, default=None,
        help="requests in flight at once for OpenAI-compatible describers (default 8)",
    )
    add_runtime_arguments(
        parser, batch_default=None,
        batch_help="images per step (the cache fills after each) and per batch of a local VLM",
        batch_default_help=f"{DEFAULT_STEP}; a VLM's batch 4",
        device_help="where a local VLM describer runs: cpu, cuda, cuda:1, mps (default: cuda if available)",
    )
    add_resume_argument(parser, what="the descriptions")
    add_engine_arguments(parser, describe=True)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Describe the images; exit 0 when all were described, 1 when some failed."""
    if args.model:
        args.describer = describer_with_model(args.describer, args.model)
    if args.engine == "ray":
        if args.descriptions:
            raise UsageError("--descriptions", "not with --engine ray: a re-run with --resume continues the --out folder and skips what it holds")
        return run_describe_on_ray(args)
    check_batch_size(args)
    check_resume(args)
    over_http = args.describer.startswith(("openai", "http://", "https://"))
    local_vlm = args.describer.startswith("vlm")
    if over_http:
        # Only tiny per-image tensor ops run here, from many threads: a wide intra-op pool
        # just contends for cores (measured 25x slower cache hits on a busy 2-core machine).
        torch.set_num_threads(1)
    options = {"concurrency": args.concurrency} if args.concurrency is not None and over_http else {}
    if args.device is not None:
        resolve_device(args.device)  # a device this machine lacks fails before any work
    if local_vlm:
        options.update(device=args.device, precision=args.precision)
        if args.batch_size is not None:
            options["batch_size"] = args.batch_size
    scan_skipped: list[tuple[str, str]] = []
    paths = expand_image_paths(args.paths, scan_skipped)
    report_scan("describe", scan_skipped)
    inputs = paths + ([args.descriptions] if args.descriptions else [])
    check_output_path(args.out, inputs=inputs, what="--out", table=True, rows=len(paths))
    known = match_descriptions("describe", args, paths) or [None] * len(paths)
    describer = build_describer_from_args(args, **options)
    step = args.batch_size or DEFAULT_STEP
    # Keyed by the path as given, so two folders' img.png never share a row when scored later.
    names = [str(path) for path in paths]
    results, given = [], []
    with ResumableRun("describe", names, journal_for(args.out, COLUMNS, args, names=names), COLUMNS, retry_failed=True) as run_:
        given = [{"path": names[i], "description": known[i], "verdict": parse_verdict(known[i])} for i in run_.todo if known[i]]
        if given:
            run_.save(given)
        todo = [names[i] for i in run_.todo if not known[i]]
        with tqdm(total=len(todo), unit="image", disable=show_progress(args) is False, file=sys.stderr) as progress:
            show_retries(describer, progress)
            for start in range(0, len(todo), step):
                chunk = todo[start : start + step]
                described = describer.describe(chunk, on_error="skip")
                run_.save([
                    {"path": path, "description": d.text, "verdict": d.verdict, "error": None if d.ok else d.error or "no description"}
                    for path, d in zip(chunk, described)
                ])
                results.extend(described)
                progress.update(len(chunk))
    report_failures("describe", [SkippedItem(index, d.item, d.error or "") for index, d in enumerate(results) if not d.ok])
    if run_.interrupted:
        given_paths = {row["path"] for row in given}
        described = sum(1 for row in run_.new_rows() if row["path"] not in given_paths)
        failed = sum(not d.ok for d in results)
        print(run_.interrupted_line(f"{described} described, {failed} failed"), file=sys.stderr)
        return 130
    summary = summarize_descriptions(results)
    kept = f", {len(given)} kept from {args.descriptions}" if given else ""
    already = f", {run_.kept} already there" if run_.kept else ""
    print(f"realness describe: {summary}{kept}{already}", file=sys.stderr)
    return 0 if all(d.ok for d in results) else 1


def show_retries(describer, progress: tqdm) -> None:
    """Count a describer's retries on the progress line, so a slow or hung server shows as one."""
    inner = getattr(describer, "describer", describer)  # under the description cache
    if not hasattr(inner, "on_retry"):
        return
    retries = 0

    def on_retry(name: str, problem: str, wait: float) -> None:
        nonlocal retries
        retries += 1
        progress.set_postfix_str(f"{retries} retries; last: {name}: {problem[:60]}", refresh=True)

    inner.on_retry = on_retry


def describer_with_model(describer: str, model: str) -> str:
    """The describer name ``describer`` with ``--model`` filled in (``openai`` + ``gpt-4o`` -> ``openai:gpt-4o``).

    Raises:
        UsageError: the name already names a model, or names no model at all (``static:``).
    """
    kind, _, argument = describer.partition(":")
    if kind == "openai" and (not argument or argument.startswith("@")):
        return f"openai:{model}{argument}"
    if kind == "vlm" and not argument:
        return f"vlm:{model}"
    raise UsageError("--model", f"the describer {describer!r} already names its model, or takes none; give one or the other")
