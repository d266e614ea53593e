"""``realness describe``: describe images with a describer and write the RAISE-TD CSV layout."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

DEFAULT_DESCRIBER = "openai"
#: Images handed to the describer per step: progress shows and the cache fills as it goes.
CHUNK_SIZE = 32


def add_describer_options(parser: argparse.ArgumentParser, *, default: str | None = DEFAULT_DESCRIBER) -> None:
    """Add ``--describer``, ``--description-cache`` and ``--no-description-cache`` to a subcommand.

    ``realness score`` and ``realness map`` use this too, then :func:`describer_from_args`.

    Args:
        parser: The subcommand's parser.
        default: The default spec (None: no describer unless asked for).
    """
    from realness.describers.factory import DESCRIBER_SPECS

    parser.add_argument(
        "--describer", default=default, metavar="SPEC",
        help=f"where descriptions come from: {DESCRIBER_SPECS} (default: {default})",
    )
    parser.add_argument(
        "--description-cache", default=None, metavar="FILE",
        help="sqlite file of cached descriptions (default: descriptions.sqlite3 in the user cache dir, "
        "or in $REALNESS_CACHE_DIR)",
    )
    parser.add_argument("--no-description-cache", action="store_true", help="neither read nor write the cache")


def describer_from_args(args: argparse.Namespace, **options):
    """Build the describer the options of :func:`add_describer_options` ask for.

    Args:
        args: Parsed arguments.
        **options: Passed to the describer's constructor.

    Returns:
        The describer (cached unless ``--no-description-cache``).
    """
    from realness.describers.factory import build_describer

    cache = False if args.no_description_cache else (args.description_cache or True)
    return build_describer(args.describer, cache=cache, **options)


def register(subparsers) -> None:
    """Add the ``describe`` subcommand."""
    parser = subparsers.add_parser(
        "describe",
        help="describe what looks unrealistic in images (writes filename,MOS,description)",
        description="Ask a describer what looks unrealistic in each image and write the RAISE-TD CSV "
        "layout (filename,MOS,description; MOS left empty). Failed images are listed on stderr.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, directories or globs")
    add_describer_options(parser)
    parser.add_argument("--out", default=None, metavar="FILE", help="output CSV (default: stdout)")
    parser.add_argument(
        "--concurrency", type=int, default=None,
        help="requests in flight at once for OpenAI-compatible describers (default 8)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Describe the images; exit 0 when all were described, 1 when some failed."""
    from tqdm import tqdm

    from realness.cli.common import expand_image_paths, report_failures, write_rows
    from realness.describers.base import summarize
    from realness.errors import SkippedItem

    over_http = args.describer.startswith(("openai", "http://", "https://"))
    options = {"concurrency": args.concurrency} if args.concurrency is not None and over_http else {}
    describer = describer_from_args(args, **options)
    paths = expand_image_paths(args.paths)
    descriptions = []
    with tqdm(total=len(paths), unit="image", disable=args.no_progress, file=sys.stderr) as progress:
        for start in range(0, len(paths), CHUNK_SIZE):
            chunk = [str(path) for path in paths[start : start + CHUNK_SIZE]]
            descriptions.extend(describer.describe(chunk, on_error="skip"))
            progress.update(len(chunk))
    names = _csv_names(paths)
    rows = [
        {"filename": name, "MOS": "", "description": d.text}
        for name, d in zip(names, descriptions)
        if d.ok
    ]
    write_rows(rows, args.out, ["filename", "MOS", "description"])
    report_failures(
        "describe", [SkippedItem(index, d.item, d.error or "") for index, d in enumerate(descriptions) if not d.ok]
    )
    print(f"realness describe: {summarize(descriptions)}", file=sys.stderr)
    return 0 if all(d.ok for d in descriptions) else 1


def _csv_names(paths: list[Path]) -> list[str]:
    """File names as RAISE-TD writes them; the paths as given where two files share a name."""
    counts = Counter(path.name for path in paths)
    return [path.name if counts[path.name] == 1 else str(path) for path in paths]
