"""``realness compare``: pick the most real output per prompt across models, summarize each model."""

from __future__ import annotations

import argparse
import sys

from realness.cli.common import add_model_arguments, report_failures


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compare`` subcommand."""
    parser = subparsers.add_parser(
        "compare",
        help="pick the most real output per prompt across several models",
        description="Score ROOT/<model>/<prompt_id>.<ext> (the same prompt ids in every model folder; "
        "optional ROOT/descriptions.csv with model,prompt_id,description), pick the most real output "
        "per prompt and summarize each model (mean, std, wins, win rate). Prints the summary as a "
        "Markdown table; --out-dir also writes winners.csv, summary.csv, summary.md and summary.png.",
    )
    parser.add_argument("root", metavar="ROOT", help="folder with one sub-folder of images per model")
    parser.add_argument("--out-dir", metavar="DIR", help="write winners.csv, summary.csv, summary.md and summary.png here")
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``realness compare``; returns the exit status."""
    from pathlib import Path

    from realness.cli.common import scorer_options
    from realness.errors import SkippedItem
    from realness.workflows.selection import select_best

    try:
        result = select_best(args.root, **scorer_options(args))
    except (ValueError, FileNotFoundError) as error:
        print(f"realness compare: {error}", file=sys.stderr)
        return 2
    print(result.summary_markdown())
    if args.out_dir:
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        result.write_winners_csv(out / "winners.csv")
        result.write_summary(out / "summary.csv")
        result.write_summary(out / "summary.md")
        result.plot(out / "summary.png")
        print(f"realness compare: wrote winners.csv, summary.csv, summary.md, summary.png -> {out}", file=sys.stderr)
    if result.incomplete_prompts:
        shown = ", ".join(result.incomplete_prompts[:10])
        print(f"realness compare: {len(result.incomplete_prompts)} prompts lack an output from some model: {shown}", file=sys.stderr)
    failures = [SkippedItem(i, str(c.path), c.error) for i, c in enumerate(result.candidates) if c.error]
    return 1 if report_failures("compare", failures) else 0
