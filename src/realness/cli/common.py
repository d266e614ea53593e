"""Pieces shared by the subcommands: expanding paths, writing tables, reporting failures."""

from __future__ import annotations

import csv
import glob
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


def expand_image_paths(patterns: Sequence[str]) -> list[Path]:
    """Directories (recursively, image suffixes only), globs and plain files, in a stable order.

    A plain path that does not exist is kept, so the caller reports it as a bad item
    instead of silently dropping it.
    """
    paths: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            paths.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            )
        elif glob.has_magic(pattern):
            paths.extend(sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file()))
        else:
            paths.append(path)
    return paths


def write_rows(rows: list[dict], out: str | Path | None, columns: Sequence[str]) -> None:
    """Write rows as CSV (default, also to stdout when ``out`` is None) or JSON (``.json``)."""
    if out is not None and str(out).endswith(".json"):
        Path(out).write_text(json.dumps(rows, indent=2, default=_json_default) + "\n")
        return
    handle = open(out, "w", newline="") if out is not None else sys.stdout
    try:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if out is not None:
            handle.close()


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def report_failures(command: str, failures: Iterable) -> int:
    """Print one line per failed item on stderr (no traceback); return how many there were."""
    count = 0
    for failure in failures:
        print(f"realness {command}: skipped {failure.item}: {failure.reason}", file=sys.stderr)
        count += 1
    return count


def read_descriptions_csv(path: str | Path) -> dict[str, str]:
    """``{filename: description}`` from a CSV with ``filename`` (or ``image``) and ``description``.

    Keys are base names, so a table written for one folder matches the same files elsewhere.
    """
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        name_column = next((c for c in ("filename", "image", "path", "name") if c in columns), None)
        if name_column is None or "description" not in columns:
            raise ValueError(f"{path}: needs a 'filename' and a 'description' column, found {columns}")
        return {Path(row[name_column]).name: row["description"] for row in reader}


def add_model_arguments(parser) -> None:
    """``--model``, ``--device``, ``--batch-size`` and the describer options of scoring commands."""
    add_describer_argument(parser)
    parser.add_argument(
        "--model", default=None, metavar="ID|DIR",
        help="bundled model name, local directory or Hub id (default: the bundled lite model)",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: cuda if available)")
    parser.add_argument("--batch-size", type=int, default=32)


def scorer_options(args) -> dict:
    """``model``, ``device``, ``batch_size`` and ``describer`` from :func:`add_model_arguments`'s options."""
    from realness.core import DEFAULT_MODEL

    return {
        "model": args.model or DEFAULT_MODEL,
        "device": args.device,
        "batch_size": args.batch_size,
        "describer": build_describer_from_args(args),
    }


def add_describer_argument(parser, *, default: str | None = None) -> None:
    """``--describer``, ``--description-cache`` and ``--no-description-cache`` (score, map, describe)."""
    from realness.describers.factory import DESCRIBER_SPECS

    parser.add_argument(
        "--describer", default=default, metavar="SPEC",
        help=f"write missing descriptions with: {DESCRIBER_SPECS} (default: {default})",
    )
    parser.add_argument(
        "--description-cache", default=None, metavar="FILE",
        help="sqlite file of cached descriptions (default: descriptions.sqlite3 in the user cache dir, "
        "or in $REALNESS_CACHE_DIR)",
    )
    parser.add_argument("--no-description-cache", action="store_true", help="neither read nor write the cache")


def build_describer_from_args(args, **options):
    """The describer ``--describer`` names (cached unless ``--no-description-cache``), or None."""
    if not getattr(args, "describer", None):
        return None
    from realness.describers.factory import build_describer

    cache = False if args.no_description_cache else (args.description_cache or True)
    return build_describer(args.describer, cache=cache, **options)
