"""``realness filter``: rank a folder by realness, keep the best, write a CSV, copy or link them."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from realness.cli.common import (
    add_descriptions_arguments,
    add_model_arguments,
    add_table_output_argument,
    check_batch_size,
    expand_image_paths,
    match_descriptions,
    report_failures,
    scorer_options,
    write_rows,
)
from realness.tables import check_output_path
from realness.workflows.filtering import CSV_COLUMNS, ExportError, filter_images


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``filter`` subcommand."""
    parser = subparsers.add_parser(
        "filter",
        help="rank images by realness and keep the most real ones",
        description="Score images with CORE, rank them, and keep those scoring at least --min-score "
        "(at most --top-k of them). Writes the kept images as a table (best first) and, with --export, "
        "copies or links them. Unreadable files are reported on stderr and never kept; the exit "
        "status is 1 if any item failed.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, directories or glob patterns")
    parser.add_argument("--min-score", type=float, default=None, metavar="X", help="keep images scoring at least X")
    parser.add_argument("--top-k", type=int, default=None, metavar="K", help="keep at most the K most real images")
    add_table_output_argument(parser, what="the kept images (best first)")
    parser.add_argument("--all", action="store_true", help="list every image in the CSV, with a kept column, not only the kept ones")
    parser.add_argument("--export", metavar="DIR", help="copy or link the kept images into DIR, keeping their relative paths")
    parser.add_argument("--mode", choices=("copy", "symlink", "hardlink"), default="copy", help="how --export places files (default: copy)")
    add_descriptions_arguments(parser, single=True)
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``realness filter``; returns the exit status."""
    check_batch_size(args)
    paths = expand_image_paths(args.paths)
    check_output_path(args.out, inputs=paths + ([args.descriptions] if args.descriptions else []), what="--out", table=True)
    # A table goes to the workflow whole (it reports its own mismatches); --description is one image's.
    given = match_descriptions("filter", args, paths) if args.description is not None else None
    if args.export and Path(args.export).is_file():
        raise ExportError(f"{args.export}: is a file; --export needs a folder")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = filter_images(
                paths if given else args.paths,
                min_score=args.min_score,
                top_k=args.top_k,
                descriptions=given or args.descriptions,
                descriptions_root=args.descriptions_root,
                **scorer_options(args),
            )
        except ValueError as error:
            print(f"realness filter: {error}", file=sys.stderr)
            return 2
    for warning in caught:
        print(f"realness filter: {warning.message}", file=sys.stderr)
    write_rows(result.to_rows(include_rejected=args.all), args.out, CSV_COLUMNS)
    if args.export:
        created = result.export(args.export, mode=args.mode)
        in_place = len(result.kept) - len(created)
        already = f" ({in_place} already there)" if in_place else ""
        print(f"realness filter: exported {len(created)} images -> {args.export}{already}", file=sys.stderr)
    failed = report_failures("filter", result.skipped)
    scored = len(result.images) - failed
    where = f" -> {args.out}" if args.out else ""
    print(f"realness filter: kept {len(result.kept)} of {scored} scored images, {failed} failed{where}", file=sys.stderr)
    return 1 if failed else 0
