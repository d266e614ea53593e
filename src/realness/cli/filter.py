"""``realness filter``: rank a folder by realness, keep the best, write a CSV, copy or link them."""

from __future__ import annotations

import argparse
import sys

from realness.cli.common import add_model_arguments, report_failures


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``filter`` subcommand."""
    parser = subparsers.add_parser(
        "filter",
        help="rank images by realness and keep the most real ones",
        description="Score images with CORE, rank them, and keep those scoring at least --min-score "
        "(at most --top-k of them). Writes the kept images as CSV (best first) and, with --export, "
        "copies or links them. Unreadable files are reported on stderr and never kept; the exit "
        "status is 1 if any item failed.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, directories or glob patterns")
    parser.add_argument("--min-score", type=float, default=None, metavar="X", help="keep images scoring at least X")
    parser.add_argument("--top-k", type=int, default=None, metavar="K", help="keep at most the K most real images")
    parser.add_argument("--out", metavar="CSV", help="write the kept images here as .csv or .json (default: CSV on stdout)")
    parser.add_argument("--all", action="store_true", help="list every image in the CSV, with a kept column, not only the kept ones")
    parser.add_argument("--export", metavar="DIR", help="copy or link the kept images into DIR, keeping their relative paths")
    parser.add_argument("--mode", choices=("copy", "symlink", "hardlink"), default="copy", help="how --export places files (default: copy)")
    parser.add_argument("--descriptions", metavar="CSV", help="CSV with filename and description columns")
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``realness filter``; returns the exit status."""
    from realness.cli.common import scorer_options, write_rows
    from realness.workflows.filtering import CSV_COLUMNS, filter_images

    try:
        result = filter_images(
            args.paths,
            min_score=args.min_score,
            top_k=args.top_k,
            descriptions=args.descriptions,
            **scorer_options(args),
        )
    except ValueError as error:
        print(f"realness filter: {error}", file=sys.stderr)
        return 2
    write_rows(result.to_rows(include_rejected=args.all), args.out, CSV_COLUMNS)
    if args.export:
        result.export(args.export, mode=args.mode)
    failed = report_failures("filter", result.skipped)
    scored = len(result.images) - failed
    where = f" -> {args.out}" if args.out else ""
    print(f"realness filter: kept {len(result.kept)} of {scored} scored images, {failed} failed{where}", file=sys.stderr)
    return 1 if failed else 0
