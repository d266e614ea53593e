"""Pieces shared by the subcommands: the shared flags, expanding paths, writing tables, reporting failures."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from realness.core.pretrained import DEFAULT_MODEL
from realness.describers.descriptions import resolve_descriptions
from realness.describers.factory import DESCRIBER_SPECS, build_describer
from realness.errors import UsageError
from realness.io.files import IMAGE_SUFFIXES, expand_image_paths  # noqa: F401 - the subcommands import them from here
from realness.io.names import escape_undecodable, name_list
from realness.io.tables import TABLE_FORMATS, write_table
from realness.runtime import device as runtime_device
from realness.runtime.device import PRECISIONS


def add_table_output_argument(parser, *, what: str = "the table") -> None:
    """``--out FILE``: a table whose suffix decides CSV / JSON / JSON Lines / Parquet (checked before any work)."""
    parser.add_argument(
        "--out", metavar="FILE",
        help=f"write {what} here: {', '.join(TABLE_FORMATS)} by the name's suffix (default: CSV on stdout)",
    )


def write_rows(rows: list[dict], out: str | Path | None, columns: Sequence[str]) -> None:
    """Write rows in the format ``out``'s suffix names (CSV on stdout when ``out`` is None), atomically."""
    write_table(rows, out, columns)


def report_failures(command: str, failures: Iterable) -> int:
    """Print one line per failed item on stderr (no traceback); return how many there were."""
    count = 0
    for failure in failures:
        print(f"realness {command}: skipped {failure.item}: {failure.reason}", file=sys.stderr)
        count += 1
    return count


def report_image_only(command: str, rows: Sequence[dict], args) -> None:
    """One warning line naming the images scored without a description (failed ones have no score to doubt)."""
    names = [escape_undecodable(str(row["path"])) for row in rows if not row.get("error") and not row.get("description")]
    if names and not getattr(args, "quiet", False):
        print(
            f"realness {command}: warning: {len(names)} of {len(rows)} images scored without a description "
            f"(image-only agrees less with people): {name_list(names)}; give --descriptions TABLE or --describer NAME",
            file=sys.stderr,
        )


def report_scan(command: str, skipped: Iterable[tuple[str, str]]) -> None:
    """Print what a folder scan left out, one line each, on stderr."""
    for path, reason in skipped:
        print(f"realness {command}: {path}: {reason}", file=sys.stderr)


def add_descriptions_arguments(parser, *, help: str = "the images' descriptions", single: bool = False) -> None:  # noqa: A002 - argparse's word
    """``--descriptions`` and ``--descriptions-root``; with ``single``, ``--description TEXT`` for one image."""
    if single:
        parser.add_argument(
            "--description", metavar="TEXT",
            help="the description of the one image given (for several images: --descriptions TABLE)",
        )
    parser.add_argument(
        "--descriptions", metavar="TABLE",
        help=f"{help}: a CSV, JSON, JSON Lines or Parquet table with an image column (path, file, filename, image "
        "or name) and a description column (description, caption or text); rows are matched by path, bare file "
        "names only when unambiguous",
    )
    parser.add_argument(
        "--descriptions-root", metavar="DIR",
        help="folder the table's relative paths start from (default: tried from the folders given, the table's "
        "folder and the current directory)",
    )


def match_descriptions(command: str, args, paths: Sequence[Path]) -> list | None:
    """The descriptions ``--description`` or ``--descriptions`` give ``paths`` (None without either).

    ``--description TEXT`` is one image's text, the library's rule for one string. Table rows that match no image, or images without a row, are named on stderr.

    Raises:
        realness.errors.UsageError: both flags, or ``--description`` for several images.
        realness.errors.TableError: the table is missing, unreadable or contradicts itself.
    """
    text = getattr(args, "description", None)
    if text is not None:
        if getattr(args, "descriptions", None):
            raise UsageError("--description", "give either --description TEXT or --descriptions TABLE, not both")
        if len(paths) != 1:
            raise UsageError("--description", f"one text for one image, but {len(paths)} images were given; use --descriptions TABLE")
        return [text] * len(paths)
    if not getattr(args, "descriptions", None):
        return None
    folders = [pattern for pattern in getattr(args, "paths", ()) if Path(pattern).is_dir()]
    match = resolve_descriptions(
        Path(args.descriptions), paths, roots=folders, root=getattr(args, "descriptions_root", None)
    ).match
    match.require_some("--descriptions")
    for line in match.problems():
        print(f"realness {command}: {line}", file=sys.stderr)
    return match.texts


def check_batch_size(args) -> None:
    """Refuse a ``--batch-size`` below 1 before any work.

    Raises:
        realness.errors.UsageError: it is below 1.
    """
    runtime_device.check_batch_size(args.batch_size, flag="--batch-size", optional=True)


def add_model_arguments(parser) -> None:
    """``--model``, ``--device``, ``--batch-size`` and the describer options of scoring commands."""
    add_describer_argument(parser)
    parser.add_argument(
        "--model", default=None, metavar="NAME|DIR",
        help="realness-core-lite (bundled, the default), hf-hub:ORG/REPO or a local directory",
    )
    add_runtime_arguments(parser)


def add_runtime_arguments(
    parser,
    *,
    batch_default: int | None = 32,
    batch_help: str = "images per forward pass",
    batch_default_help: str = "from free memory",
    device_help: str = "cpu, cuda, cuda:1, mps (default: cuda if available)",
) -> None:
    """The flags every model-running subcommand shares: ``--device``, ``--precision``,
    ``--batch-size``, ``--no-progress`` and ``--quiet`` (docs/cli.md lists them)."""
    parser.add_argument("--device", default=None, help=device_help)
    parser.add_argument(
        "--precision", default="auto", choices=PRECISIONS,
        help="auto: bf16 autocast on CUDA, fp32 on CPU; fp32, bf16 or fp16 to choose (default: auto)",
    )
    default = batch_default_help if batch_default is None else batch_default
    parser.add_argument("--batch-size", type=int, default=batch_default, metavar="N", help=f"{batch_help} (default: {default})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no warnings; errors are still printed")


def show_progress(args) -> bool | None:
    """``progress=`` for the library: False under ``--no-progress`` or ``--quiet``, else None (automatic)."""
    return False if getattr(args, "no_progress", False) or getattr(args, "quiet", False) else None


def scorer_options(args) -> dict:
    """``model``, ``device``, ``precision``, ``batch_size``, ``describer`` and ``progress`` from
    :func:`add_model_arguments`'s options."""
    return {
        "model": args.model or DEFAULT_MODEL,
        "device": args.device,
        "precision": args.precision,
        "batch_size": args.batch_size,
        "describer": build_describer_from_args(args),
        "progress": show_progress(args),
    }


def add_describer_argument(parser, *, default: str | None = None) -> None:
    """``--describer``, ``--description-cache`` and ``--no-description-cache``."""
    parser.add_argument(
        "--describer", default=default, metavar="NAME",
        help=f"write missing descriptions with: {DESCRIBER_SPECS} (default: {default})",
    )
    parser.add_argument(
        "--description-cache", default=None, metavar="FILE",
        help="sqlite file of cached descriptions (default: descriptions.sqlite3 in the user cache dir, "
        "or in $REALNESS_CACHE_DIR)",
    )
    parser.add_argument("--no-description-cache", action="store_true", help="neither read nor write the cache")
    parser.add_argument(
        "--timeout", type=float, default=None, metavar="SECONDS",
        help="openai describers: how long one request may wait for the server (default: 60)",
    )
    parser.add_argument(
        "--max-retries", type=int, default=None, metavar="N",
        help="openai describers: retries per image after a timeout, 429, 5xx or garbled answer (default: 6)",
    )
    parser.add_argument(
        "--budget", type=float, default=None, metavar="SECONDS",
        help="openai describers: the most one image may take, retries and waits included; past it the image "
        "fails by name (default: no bound but --timeout and --max-retries)",
    )


#: The ``--flag``s that tune a describer's requests, by their keyword in :class:`~realness.describers.OpenAIDescriber`.
NETWORK_OPTIONS = {"timeout": "--timeout", "max_retries": "--max-retries", "budget": "--budget"}


def build_describer_from_args(args, **options):
    """The describer ``--describer`` names (cached unless ``--no-description-cache``), or None.

    Raises:
        realness.errors.UsageError: ``--timeout``, ``--max-retries`` or ``--budget`` with a
            describer that calls no server, or a value out of range.
    """
    if not getattr(args, "describer", None):
        return None
    for name, flag in NETWORK_OPTIONS.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        if not args.describer.startswith("openai"):
            raise UsageError(flag, f"only for describers that call a server (openai:...), not {args.describer}")
        if not value >= (0 if name == "max_retries" else 1e-9):
            raise UsageError(flag, f"must be {'at least 0' if name == 'max_retries' else 'above 0'}, not {value:g}")
        options["time_budget" if name == "budget" else name] = value
    cache = False if args.no_description_cache else (args.description_cache or True)
    return build_describer(args.describer, cache=cache, **options)
