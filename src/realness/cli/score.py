"""``realness score``: CORE scores for files, directories and globs, to CSV or JSON."""

from __future__ import annotations

import argparse
import sys

from realness.cli.common import add_model_arguments, expand_image_paths, read_descriptions_csv, report_failures, write_rows
from realness.cli.engine import add_engine_arguments

COLUMNS = ("name", "score", "verdict", "description", "error")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score how real images look (CORE)",
        description="Score images with CORE. Bad files are reported on stderr and skipped; "
        "the exit status is 1 if any item failed.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, directories or glob patterns")
    parser.add_argument("--descriptions", metavar="CSV", help="CSV with filename and description columns (RAISE-TD layout)")
    add_model_arguments(parser)
    parser.add_argument("--out", metavar="FILE", help="write .csv or .json here (default: CSV on stdout)")
    add_engine_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.engine == "ray":
        from realness.cli.engine import run_score_on_ray

        return run_score_on_ray(args)
    from realness.cli.common import build_describer_from_args
    from realness.core import DEFAULT_MODEL, RealnessScorer

    paths = expand_image_paths(args.paths)
    if not paths:
        print("realness score: no images found", file=sys.stderr)
        return 2
    texts = None
    if args.descriptions:
        table = read_descriptions_csv(args.descriptions)
        texts = [table.get(path.name) for path in paths]
    scorer = RealnessScorer.from_pretrained(
        args.model or DEFAULT_MODEL,
        device=args.device,
        batch_size=args.batch_size,
        describer=build_describer_from_args(args),
    )
    result = scorer([str(p) for p in paths], texts, on_error="skip")
    write_rows(result.to_rows(), args.out, COLUMNS)
    failed = report_failures("score", result.skipped)
    if args.out:
        print(f"realness score: {len(paths) - failed} scored, {failed} failed -> {args.out}", file=sys.stderr)
    return 1 if failed else 0
