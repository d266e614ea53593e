"""``realness score``: CORE scores for files, directories and globs, as a table."""

from __future__ import annotations

import argparse
import signal
import sys

from realness.cli.common import (
    add_descriptions_arguments,
    add_model_arguments,
    add_table_output_argument,
    check_batch_size,
    expand_image_paths,
    match_descriptions,
    report_failures,
    report_scan,
    scorer_options,
)
from realness.cli.engine import add_engine_arguments, run_score_on_ray
from realness.core import RealnessScorer
from realness.tables import RowJournal, check_output_path, write_csv_rows

COLUMNS = ("path", "score", "verdict", "description", "error")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score how real images look (CORE)",
        description="Score images with CORE. Bad files are reported on stderr and skipped; "
        "the exit status is 1 if any item failed. Rows are saved as each batch finishes: "
        "Ctrl-C stops within a batch, keeps every row scored so far in --out (exit status 130), "
        "and --resume continues from there.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, directories or glob patterns")
    add_descriptions_arguments(parser, single=True)
    add_model_arguments(parser)
    add_table_output_argument(parser)
    parser.add_argument(
        "--resume", action="store_true",
        help="keep the rows already in --out (or left by an interrupted run) and score only the other images",
    )
    add_engine_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.engine == "ray":
        return run_score_on_ray(args)
    check_batch_size(args)
    if args.resume and not args.out:
        print("realness score: --resume: needs --out, the file to continue", file=sys.stderr)
        return 2
    scan_skipped: list[tuple[str, str]] = []
    paths = expand_image_paths(args.paths, scan_skipped)
    report_scan("score", scan_skipped)
    if not paths:
        print("realness score: no images found", file=sys.stderr)
        return 2
    inputs = paths + ([args.descriptions] if args.descriptions else [])
    check_output_path(args.out, inputs=inputs, what="--out", table=True)
    texts = match_descriptions("score", args, paths)
    journal = RowJournal(args.out, COLUMNS, resume=args.resume) if args.out else None
    # Everything a user can get wrong is checked above: only now load the model.
    scorer = RealnessScorer(**scorer_options(args))
    names = [str(path) for path in paths]
    done = journal.done() if journal is not None else set()
    todo = [i for i, name in enumerate(names) if name not in done]
    failed = scored = 0
    interrupted = False
    header = journal is None
    try:
        if todo:
            batches = scorer.iter_batches(
                [names[i] for i in todo], [texts[i] for i in todo] if texts else None, on_error="skip"
            )
            for _, result in batches:
                rows = result.to_rows()
                if journal is not None:
                    journal.append(rows)
                else:
                    _print_rows(rows, header=header)
                    header = False
                failed += report_failures("score", result.skipped)
                scored += len(rows)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if journal is not None:
            # A second Ctrl-C must not cut the final write short.
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                journal.finish(order=names)
            finally:
                signal.signal(signal.SIGINT, previous)
    where = f" -> {args.out}" if args.out else ""
    kept = f", {len(names) - len(todo)} already there" if len(todo) < len(names) else ""
    if interrupted:
        print(
            f"realness score: interrupted after {scored - failed} scored, {failed} failed of {len(todo)}{kept}{where}"
            + ("; run it again with --resume to finish" if args.out else ""),
            file=sys.stderr,
        )
        return 130
    if args.out:
        print(f"realness score: {scored - failed} scored, {failed} failed{kept}{where}", file=sys.stderr)
    # The status describes the table handed back, rows kept from an earlier run included.
    return 1 if (journal.failed() if journal is not None else failed) else 0


def _print_rows(rows: list[dict], *, header: bool) -> None:
    """Stream rows as CSV on stdout, so a pipe sees each batch as soon as it is scored."""
    write_csv_rows(sys.stdout, rows, COLUMNS, header=header)
    sys.stdout.flush()
