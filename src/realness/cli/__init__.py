"""The ``realness`` command line: one module per subcommand, each with ``register`` and ``run``.

The library is imported at module level (building the parser loads torch anyway); Ray itself,
an optional extra, loads only when ``--engine ray`` runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

from realness import __version__
from realness.errors import ChecksumError, DescriberError, ImageOnlyWarning, OutputWriteError, RealnessError

SUBCOMMANDS = ("score", "describe", "map", "train", "filter", "compare")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like every other error of the CLI."""

    def error(self, message: str):
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="realness",
        description="Score how real images look (CORE), map where they stop looking real (DREAM).",
        epilog="Exit status: 0 done, 1 some items or the run failed, 2 a usage or input mistake. "
        "Errors are one line; --debug (anywhere on the line) shows the traceback.",
    )
    parser.add_argument("--version", action="version", version=f"realness {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and warnings with their source")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"realness.cli.{name}").register(subparsers)
    return parser


# Failures of the run rather than of the command line: a describer service that failed, a
# download that does not match its pin, a disk that filled up. Every other RealnessError is the user's to fix.
_RUNTIME_ERRORS = (DescriberError, ChecksumError, OutputWriteError)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already printed
        return int(exit_.code or 0)
    except KeyboardInterrupt:  # Ctrl-C while torch and the subcommands load: nothing started yet
        print("realness: interrupted before starting; nothing was done", file=sys.stderr)
        return 130
    command = f"realness {args.command}"
    with warnings.catch_warnings():
        if getattr(args, "quiet", False):
            warnings.simplefilter("ignore")
        else:
            # The library's image-only warning speaks Python (descriptions=); the subcommands that
            # score say it in flags, naming the images (realness.cli.common.report_image_only).
            warnings.filterwarnings("ignore", category=ImageOnlyWarning)
            if not debug:
                warnings.showwarning = _one_line_warning(command)
        try:
            return int(args.run(args) or 0)
        except KeyboardInterrupt:  # outside a subcommand's saved loop (which reports its own)
            print(f"{command}: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:
            # The reader went away (`realness score ... | head`): stop quietly, as Unix tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        except Exception as error:  # noqa: BLE001 - every failure becomes one line (--debug re-raises)
            if debug:
                raise
            status, line = _error_line(error)
            print(f"{command}: {line}", file=sys.stderr)
            return status


def _error_line(error: BaseException) -> tuple[int, str]:
    """The exit status and the one line (``ITEM: REASON``) that report ``error``."""
    if isinstance(error, _RUNTIME_ERRORS):
        return 1, str(error)
    if isinstance(error, RealnessError):
        return 2, str(error)
    if isinstance(error, OSError) and error.filename is not None:
        # A file the user named that is missing or unreadable.
        return 2, f"{error.filename}: {error.strerror or error}"
    if isinstance(error, ValueError):
        # The library's own argument checks (top_k, stride, ...): the user's to fix.
        return 2, str(error)
    return 1, f"error: {type(error).__name__}: {error} (run with --debug for the traceback)"


def _one_line_warning(command: str):
    """A ``warnings.showwarning`` that prints ``realness CMD: warning: MESSAGE`` and no source line."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())  # one line, whatever the message's layout
        print(f"{command}: warning: {text}", file=file or sys.stderr)

    return show


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
