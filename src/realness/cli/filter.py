"""``realness filter``: rank a folder by realness, keep the best, write a CSV, copy or link them."""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from pathlib import Path

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
    write_rows,
)
from realness.cli.engine import add_engine_arguments, score_on_ray
from realness.cli.resumable import ResumableRun, add_resume_argument, check_resume, journal_for, ray_output_run
from realness.core import RealnessScorer
from realness.errors import UsageError
from realness.io.files import check_outside_scanned_folders
from realness.io.schema import FILTER_COLUMNS, SCORE_COLUMNS
from realness.io.tables import check_output_path
from realness.workflows.filtering import ExportError, check_top_k, rank_images


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
    parser.add_argument("--confident", action="store_true",
                        help="with --min-score X: keep only images whose interval's low end (score_low) is at least X")
    add_table_output_argument(parser, what="the kept images (best first)")
    parser.add_argument("--all", action="store_true", help="list every image in the CSV, with a kept column, not only the kept ones")
    parser.add_argument("--export", metavar="DIR", help="copy or link the kept images into DIR, keeping their relative paths")
    parser.add_argument("--mode", choices=("copy", "symlink", "hardlink"), default="copy", help="how --export places files (default: copy)")
    parser.add_argument("--report", metavar="HTML",
                        help="also write one self-contained HTML page: every image ranked with its thumbnail, score, verdict "
                        "and description, and the kept / dropped line (opens offline)")
    parser.add_argument("--report-maps", action="store_true",
                        help="with --report: add each image's realness map from the bundled model (one more encoder pass per image)")
    add_descriptions_arguments(parser, single=True)
    add_model_arguments(parser)
    add_resume_argument(parser, what="the scores")
    add_engine_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``realness filter``; returns the exit status."""
    check_batch_size(args)
    check_resume(args)
    check_top_k(args.top_k)
    if args.confident and args.min_score is None:
        raise UsageError("--confident", "keeps images whose interval lies above --min-score X: give --min-score")
    if args.engine == "ray":
        if not args.out:
            raise UsageError("--out", "the ray engine keeps its scores beside --out until the ranking is written; give one, e.g. --out kept.csv")
        if args.describer:
            raise UsageError(
                "--describer", "with --engine ray describing is its own stage; run `realness describe ... --engine ray "
                "--out descriptions.parquet` first, then pass --descriptions descriptions.parquet",
            )
    scan_skipped: list[tuple[str, str]] = []
    paths = expand_image_paths(args.paths, scan_skipped)
    report_scan("filter", scan_skipped)
    if not paths:
        print(f"realness filter: no image files found in {', '.join(args.paths)}", file=sys.stderr)
        return 2
    check_output_path(args.out, inputs=paths + ([args.descriptions] if args.descriptions else []), what="--out", table=True,
                      rows=len(paths))
    check_export_folder(args.export, args.paths)
    if args.report_maps and not args.report:
        raise UsageError("--report-maps", "adds maps to the HTML report: give --report PAGE.html too")
    check_output_path(args.report, inputs=paths, what="--report")
    texts = match_descriptions("filter", args, paths)
    names = [str(path) for path in paths]
    if args.engine == "ray":
        return filter_on_ray(args, names, texts)
    # The ranking needs every score: the scores are journaled (<out>.partial) until it is written.
    with ResumableRun("filter", names, journal_for(args.out, SCORE_COLUMNS, args, names=names, table=False)) as run_:
        scorer = RealnessScorer(**scorer_options(args))
        if run_.todo:
            batches = scorer.iter_batches(
                [names[i] for i in run_.todo], [texts[i] for i in run_.todo] if texts else None, on_error="skip"
            )
            for _, result in batches:
                run_.save(unrounded_rows(result))
    new = run_.new_rows()
    failed = sum(1 for row in new if row.get("error"))
    if run_.interrupted:
        print(run_.interrupted_line(f"{len(new) - failed} scored, {failed} failed"), file=sys.stderr)
        return 130
    result = rank_rows(run_.all_rows(), min_score=args.min_score, top_k=args.top_k, confident=args.confident)
    report_image_only("filter", run_.all_rows(), args)
    status = export_ranking("filter", result, args, already=run_.kept)
    run_.complete()
    return status


def unrounded_rows(result) -> list[dict]:
    """``result``'s rows with the scores at full precision: ranking ties must not come from rounding."""
    rows = result.to_rows()
    for row, value in zip(rows, result.scores.tolist()):
        row["score"] = None if math.isnan(value) else value
    return rows


def rank_rows(rows: list[dict], *, min_score: float | None, top_k: int | None, confident: bool = False):
    """Rank score rows (:data:`~realness.io.schema.SCORE_COLUMNS`) as :func:`filter_images` does."""
    return rank_images(
        [row["path"] for row in rows],
        [math.nan if row.get("score") is None else float(row["score"]) for row in rows],
        min_score=min_score,
        top_k=top_k,
        verdicts=[row.get("verdict") for row in rows],
        descriptions=[row.get("description") for row in rows],
        errors={i: row["error"] for i, row in enumerate(rows) if row.get("error")},
        intervals=[(row.get("score_low"), row.get("score_high")) for row in rows],
        confident=confident,
    )


def check_export_folder(export: str | None, patterns: list[str]) -> None:
    """Refuse, before any work, an ``--export`` that is a file or lies inside a folder the images come from.

    Raises:
        ExportError: it is a file.
        OutputError: it is inside a source folder (the next run would read the copies back).
    """
    if not export:
        return
    check_outside_scanned_folders(export, patterns, what="the exported copies", flag="--export", same_folder_ok=True)
    if Path(export).is_file():
        raise ExportError(f"{export}: is a file; --export needs a folder")


def export_ranking(command: str, result, args: argparse.Namespace, *, already: int = 0) -> int:
    """Write the ranking to ``--out``, place the kept images in ``--export``, report; returns the exit status."""
    write_rows(result.to_rows(include_rejected=args.all), args.out, FILTER_COLUMNS)
    if args.export:
        created = result.export(args.export, mode=args.mode)
        in_place = len(result.kept) - len(created)
        there = f" ({in_place} already there)" if in_place else ""
        print(f"realness {command}: exported {len(created)} images -> {args.export}{there}", file=sys.stderr)
    if args.report:
        write_filter_report(result, args)
    failed = report_failures(command, result.skipped)
    scored = len(result.images) - failed
    where = f" -> {args.out}" if args.out else ""
    earlier = f" ({already} scored by an earlier run)" if already else ""
    print(f"realness {command}: kept {len(result.kept)} of {scored} scored images, {failed} failed{earlier}{where}", file=sys.stderr)
    return 1 if failed else 0


def write_filter_report(result, args: argparse.Namespace) -> Path:
    """Write ``--report``: the ranking as one self-contained HTML page, with core maps under ``--report-maps``."""
    from realness.workflows.report import filter_report, write_report

    maps = {}
    if args.report_maps:
        from realness.dream import RealnessMapper

        mapper = RealnessMapper(method="core", device=args.device)
        scored = [str(image.path) for image in result.images if not image.error]
        batch = mapper(scored, on_error="skip") if scored else []
        maps = {name: found for name, found in zip(scored, batch) if found is not None}
    rule = ", ".join(part for part in (
        f"score >= {args.min_score:g}" if args.min_score is not None else "",
        f"top {args.top_k}" if args.top_k is not None else "",
        "interval above the threshold" if args.confident else "",
    ) if part)
    # The threshold is the cut unless --top-k cut higher; then the page draws it between kept and dropped.
    threshold = args.min_score if args.top_k is None else None
    path = write_report(args.report, filter_report(result, maps=maps, rule=rule, min_score=threshold))
    print(f"realness filter: report -> {path}", file=sys.stderr)
    return path


def ray_scores_folder(out: str) -> Path:
    """Where ``--engine ray`` keeps the scores of a ``filter`` run until its ranking is written."""
    return Path(f"{out}.scores")


def filter_on_ray(args: argparse.Namespace, names: list[str], texts: list | None) -> int:
    """Score ``names`` on Ray into a resumable Parquet folder beside ``--out``, then rank and export as locally.

    The images, their descriptions, the ranking and the export are the local engine's: only the
    scoring runs on the actors, so both engines keep and export the same images.

    Raises:
        realness.errors.TableError: a scores folder left by an interrupted run, without ``--resume``.
    """
    from realness.distributed import ParquetOutput, score_schema  # optional: the ray extra

    folder = ray_scores_folder(args.out)
    try:
        descriptions = {name: text for name, text in zip(names, texts) if text} if texts else None
        with ray_output_run("filter", args, folder, names=names):
            summary = score_on_ray(args, names, descriptions, folder, progress=not (args.no_progress or args.quiet))
    except KeyboardInterrupt:
        print(
            f"realness filter: interrupted; the scores done so far are kept in {folder}; "
            "run it again with --resume to finish",
            file=sys.stderr,
        )
        return 130
    print(f"realness filter: {summary}", file=sys.stderr)
    by_path = {row["path"]: row for row in ParquetOutput(folder, score_schema()).read().to_pylist()}
    result = rank_rows([by_path[name] for name in names if name in by_path], min_score=args.min_score, top_k=args.top_k,
                       confident=args.confident)
    status = export_ranking("filter", result, args, already=summary.already_done)
    shutil.rmtree(folder)  # the ranking is written: the scores it came from are no longer needed
    return status
