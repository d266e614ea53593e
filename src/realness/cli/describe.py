"""``realness describe``: describe images with a describer and write the RAISE-TD CSV layout."""

from __future__ import annotations

import argparse
import sys

from realness.cli.common import add_describer_argument, build_describer_from_args
from realness.cli.engine import add_engine_arguments

DEFAULT_DESCRIBER = "openai"
#: Images handed to the describer per step: progress shows and the cache fills as it goes.
CHUNK_SIZE = 32


def register(subparsers) -> None:
    """Add the ``describe`` subcommand."""
    parser = subparsers.add_parser(
        "describe",
        help="describe what looks unrealistic in images (writes path,MOS,description)",
        description="Ask a describer what looks unrealistic in each image and write a CSV "
        "(path,MOS,description; MOS left empty; path is each image's path as given, "
        "which realness score --descriptions matches). Failed images are listed on stderr.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, directories or globs")
    add_describer_argument(parser, default=DEFAULT_DESCRIBER)
    parser.add_argument("--out", default=None, metavar="FILE", help="output CSV (default: stdout)")
    parser.add_argument(
        "--concurrency", type=int, default=None,
        help="requests in flight at once for OpenAI-compatible describers (default 8)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no warnings; errors are still printed")
    parser.add_argument("--device", default=None, help="where a local VLM describer runs: cpu, cuda, cuda:1, mps (default: cuda if available)")
    add_engine_arguments(parser, describe=True)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Describe the images; exit 0 when all were described, 1 when some failed."""
    if args.engine == "ray":
        from realness.cli.engine import run_describe_on_ray

        return run_describe_on_ray(args)
    from tqdm import tqdm

    from realness.cli.common import expand_image_paths, report_failures, report_scan, show_progress, write_rows
    from realness.describers.base import summarize
    from realness.errors import SkippedItem
    from realness.tables import check_output_path

    over_http = args.describer.startswith(("openai", "http://", "https://"))
    if over_http:
        import torch

        # Only tiny per-image tensor ops run here, from many threads: a wide intra-op pool
        # just contends for cores (measured 25x slower cache hits on a busy 2-core machine).
        torch.set_num_threads(1)
    options = {"concurrency": args.concurrency} if args.concurrency is not None and over_http else {}
    if args.device is not None:
        from realness.runtime import resolve_device

        resolve_device(args.device)  # a device this machine lacks fails before any work
        if args.describer.startswith("vlm"):
            options["device"] = args.device
    scan_skipped: list[tuple[str, str]] = []
    paths = expand_image_paths(args.paths, scan_skipped)
    report_scan("describe", scan_skipped)
    check_output_path(args.out, inputs=paths, what="--out")
    describer = build_describer_from_args(args, **options)
    descriptions = []
    with tqdm(total=len(paths), unit="image", disable=show_progress(args) is False, file=sys.stderr) as progress:
        for start in range(0, len(paths), CHUNK_SIZE):
            chunk = [str(path) for path in paths[start : start + CHUNK_SIZE]]
            descriptions.extend(describer.describe(chunk, on_error="skip"))
            progress.update(len(chunk))
    # Keyed by the path as given, so two folders' img.png never share a row when scored later.
    rows = [
        {"path": str(path), "MOS": "", "description": d.text}
        for path, d in zip(paths, descriptions)
        if d.ok
    ]
    write_rows(rows, args.out, ["path", "MOS", "description"])
    report_failures(
        "describe", [SkippedItem(index, d.item, d.error or "") for index, d in enumerate(descriptions) if not d.ok]
    )
    print(f"realness describe: {summarize(descriptions)}", file=sys.stderr)
    return 0 if all(d.ok for d in descriptions) else 1

