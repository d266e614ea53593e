"""``realness score``: CORE scores for files, directories and globs, as a table."""

from __future__ import annotations

import argparse
import sys

from realness.cli.common import (
    add_descriptions_arguments,
    add_model_arguments,
    add_table_output_argument,
    check_batch_size,
    expand_image_paths,
    match_descriptions,
    report_failures,
    report_image_only,
    report_scan,
    scorer_options,
)
from realness.cli.engine import add_engine_arguments, run_score_on_ray
from realness.cli.resumable import ResumableRun, add_resume_argument, check_resume, journal_for
from realness.core import RealnessScorer
from realness.io.schema import SCORE_COLUMNS as COLUMNS
from realness.io.tables import check_output_path


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
    add_resume_argument(parser, what="the rows")
    add_engine_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.engine == "ray":
        return run_score_on_ray(args)
    check_batch_size(args)
    check_resume(args)
    scan_skipped: list[tuple[str, str]] = []
    paths = expand_image_paths(args.paths, scan_skipped)
    report_scan("score", scan_skipped)
    if not paths:
        print("realness score: no images found", file=sys.stderr)
        return 2
    inputs = paths + ([args.descriptions] if args.descriptions else [])
    check_output_path(args.out, inputs=inputs, what="--out", table=True, rows=len(paths))
    texts = match_descriptions("score", args, paths)
    names = [str(path) for path in paths]
    with ResumableRun("score", names, journal_for(args.out, COLUMNS, args, names=names), COLUMNS) as run_:
        if run_.todo:
            # Everything a user can get wrong is checked above, and there is work: only now load the model.
            scorer = RealnessScorer(**scorer_options(args))
            batches = scorer.iter_batches(
                [names[i] for i in run_.todo], [texts[i] for i in run_.todo] if texts else None, on_error="skip"
            )
            for _, result in batches:
                run_.save(result.to_rows())
                report_failures("score", result.skipped)
    new = run_.new_rows()
    failed = sum(1 for row in new if row.get("error"))
    done = f"{len(new) - failed} scored, {failed} failed"
    if run_.interrupted:
        print(run_.interrupted_line(done), file=sys.stderr)
        return 130
    report_image_only("score", run_.all_rows(), args)
    if args.out:
        kept = f", {run_.kept} already there" if run_.kept else ""
        print(f"realness score: {done}{kept} -> {args.out}", file=sys.stderr)
    # The status describes the table handed back, rows kept from an earlier run included.
    return 1 if run_.any_failed() else 0
