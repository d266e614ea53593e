"""``realness compare``: which generator's images look more real, and how sure is that?"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from realness.cli.common import (
    add_model_arguments,
    add_table_output_argument,
    check_batch_size,
    report_failures,
    scorer_options,
    write_rows,
)
from realness.errors import SkippedItem, UsageError
from realness.io.atomic import write_text_atomic
from realness.io.files import IMAGE_SUFFIXES, check_outside_scanned_folders
from realness.io.schema import COMPARE_COLUMNS
from realness.io.tables import check_output_path
from realness.text.verdict import parse_verdict
from realness.workflows.report import compare_report, write_report
from realness.workflows.selection import compare_folders, select_best

#: ``--out``: one row per image compared.


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compare`` subcommand."""
    parser = subparsers.add_parser(
        "compare",
        help="compare generators by realness: paired by prompt, or two folders as distributions",
        description="Paired (default): ROOT with one sub-folder per model, or two or more model folders; "
        "outputs pair across models by a key from their file names (--key, --key-pattern). Prints each "
        "model's mean score with a bootstrap 95% CI and paired win rate, and for each pair of models the "
        "mean difference with its CI and a Wilcoxon signed-rank test ('no significant difference' when "
        "p >= 0.05). Exit status 2 when nothing pairs. --unpaired compares two folders of unrelated images "
        "(Mann-Whitney U, CI on the difference of means). --out writes every image's score as a table; "
        "--out-dir writes the report: winners.csv, summary.csv, comparisons.csv, summary.md, summary.png and "
        "report.html (one self-contained page: the summary, the chart, each prompt's outputs side by side).",
    )
    parser.add_argument("folders", nargs="+", metavar="FOLDER", help="ROOT with one folder per model, or the model folders")
    parser.add_argument("--key", default="stem", choices=("stem", "name", "path"),
                        help="pair outputs by file name without suffix (stem, default), whole file name (name), "
                        "or path below the model folder (path, searches sub-folders)")
    parser.add_argument("--key-pattern", metavar="REGEX",
                        help="take the key out of the file name with this regular expression (its first group), "
                        "e.g. '(.*)_v[0-9]+' pairs cat_v1.png with cat_v2.png")
    parser.add_argument("--unpaired", action="store_true", help="compare two folders as distributions (no pairing)")
    parser.add_argument("--descriptions", metavar="CSV",
                        help="paired: generator,prompt_id,description; unpaired: path,description")
    parser.add_argument("--bootstrap", type=int, default=2000, metavar="N", help="bootstrap resamples for the CIs (default 2000)")
    add_table_output_argument(parser, what="every image's score (path, generator, prompt_id, score, description, verdict, error)")
    parser.add_argument("--out-dir", metavar="DIR", help="write the report here: the summary tables and the chart")
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``realness compare``; returns the exit status."""
    check_batch_size(args)
    if args.out_dir:
        check_outside_scanned_folders(args.out_dir, args.folders, what="the report", flag="--out-dir")
        if Path(args.out_dir).is_file():
            raise UsageError(args.out_dir, "is a file; --out-dir needs a folder")
    if args.out and Path(args.out).suffix.lower() in IMAGE_SUFFIXES:  # a table is never read back as an image
        check_outside_scanned_folders(args.out, args.folders, what="the table", flag="--out")
    check_output_path(args.out, inputs=[args.descriptions] if args.descriptions else [], what="--out", table=True)
    options = scorer_options(args)
    descriptions = Path(args.descriptions) if args.descriptions else None  # --descriptions names a table
    if args.unpaired:
        if len(args.folders) != 2:
            raise UsageError("--unpaired", f"needs exactly two folders, got {len(args.folders)}")
        result = compare_folders(*args.folders, descriptions=descriptions, bootstrap=args.bootstrap, **options)
        candidates = result.candidates
    else:
        folders = args.folders[0] if len(args.folders) == 1 else args.folders
        result = select_best(
            folders, key=args.key, key_pattern=args.key_pattern, descriptions=descriptions,
            bootstrap=args.bootstrap, **options,
        )
        candidates = result.candidates
    print(result.summary_markdown())
    if args.out:
        rows = [
            {"path": str(c.path), "generator": c.model, "prompt_id": c.prompt_id, "score": c.score,
             "description": c.description, "verdict": parse_verdict(c.description), "error": c.error}
            for c in candidates
        ]
        write_rows(rows, args.out, COMPARE_COLUMNS)
        print(f"realness compare: {len(rows)} scores -> {args.out}", file=sys.stderr)
    if args.out_dir:
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = ["summary.csv", "summary.md", "summary.png", "report.html"]
        result.write_summary(out / "summary.csv")
        result.plot(out / "summary.png")
        write_text_atomic(out / "summary.md", result.summary_markdown() + "\n\n![summary chart](summary.png)\n")
        write_report(out / "report.html", compare_report(result, chart=out / "summary.png"))
        if not args.unpaired:
            result.write_winners_csv(out / "winners.csv")
            result.write_comparisons_csv(out / "comparisons.csv")
            written = ["winners.csv", "comparisons.csv", *written]
        print(f"realness compare: wrote {', '.join(written)} -> {out}", file=sys.stderr)
    failures = [SkippedItem(i, str(c.path), c.error) for i, c in enumerate(candidates) if c.error]
    return 1 if report_failures("compare", failures) else 0
