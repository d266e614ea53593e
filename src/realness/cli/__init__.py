"""The ``realness`` command line: one module per subcommand, each with ``register``.

Subcommand modules import their heavy dependencies inside ``run`` so that
``realness --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from realness import __version__
from realness.errors import RealnessError

SUBCOMMANDS = ("score", "describe", "map", "train", "filter", "compare")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="realness",
        description="Score how real images look (CORE), map where they stop looking real (DREAM).",
    )
    parser.add_argument("--version", action="version", version=f"realness {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"realness.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except RealnessError as error:
        # A user-facing failure (missing weights, bad option): no traceback.
        print(f"realness {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
