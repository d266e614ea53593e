"""Image files from what a user types: folders (searched recursively), glob patterns and plain paths.

The library's workflows and the CLI expand paths here, so ``filter_images("gen/")`` and
``realness filter gen/`` see the same files in the same order.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from realness.errors import OutputError, UsageError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


def special_file_reason(mode: int) -> str | None:
    """Why a file of this ``st_mode`` is no image file (a FIFO, socket or device), or None for a regular file or folder.

    Opening such a file for reading can block forever (a FIFO without a writer) or read
    without end (``/dev/zero``), so they are refused from their mode alone, never opened.
    """
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not an image file; left unopened"
    if stat.S_ISSOCK(mode):
        return "a socket, not an image file; left unopened"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not an image file; left unopened"
    return None


def expand_image_paths(patterns: Sequence[str], skipped: list[tuple[str, str]] | None = None) -> list[Path]:
    """Directories (recursively, image suffixes only), globs and plain files, in a stable order.

    Folder scans follow symbolic links to files and folders; a folder reached a second time
    (a link loop, or two links to one folder) is scanned once, and broken links, unreadable
    folders and special files (FIFOs, sockets, devices: never opened) are left out. Each such
    case is appended to ``skipped`` as ``(path, reason)`` so the caller can report it.

    A plain path that does not exist is kept when it names an image file, so the caller
    reports it as a bad item instead of silently dropping it; without an image suffix it is
    most likely a misspelled folder, refused before any work.

    Raises:
        UsageError: a plain path without an image suffix that does not exist.
    """
    paths: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            paths.extend(_scan_folder(path, skipped if skipped is not None else []))
        elif glob.has_magic(pattern):
            for match in sorted(Path(p) for p in glob.glob(pattern, recursive=True)):
                reason = _left_out(match)
                if reason is None:
                    paths.append(match)
                elif reason and skipped is not None:
                    skipped.append((str(match), reason))
        else:
            if path.suffix.lower() not in IMAGE_SUFFIXES and not os.path.lexists(path):
                raise UsageError(pattern, "no such folder or file; check the spelling")
            paths.append(path)
    return paths


def scanned_folders(patterns: Sequence[str]) -> list[Path]:
    """The folders :func:`expand_image_paths` reads images from: each folder named, and each glob's fixed part."""
    folders = []
    for pattern in patterns:
        path = Path(pattern)
        if glob.has_magic(pattern):
            fixed = list(itertools.takewhile(lambda part: not glob.has_magic(part), path.parts))
            path = Path(*fixed) if fixed else Path(".")
        if path.is_dir():
            folders.append(path)
    return folders


def check_outside_scanned_folders(
    out: str | os.PathLike, patterns: Sequence[str], *, what: str, flag: str, same_folder_ok: bool = False
) -> None:
    """Refuse an output inside a folder these patterns scan: the next run would read it back as images.

    Checked before any work (outputs are refused rather than left out of later scans, so a
    scan never depends on what an earlier run wrote).

    Args:
        out: The output file or folder.
        patterns: The image paths the command was given.
        what: What the output holds, for the message (``"the maps"``).
        flag: The option that names it (``"--out"``).
        same_folder_ok: ``out`` may be a scanned folder itself (``filter --export`` into the
            source places each kept image where it already is: nothing new to read back).

    Raises:
        OutputError: ``out`` is one of those folders or lies inside one.
    """
    target = Path(out).resolve()
    for folder in scanned_folders(patterns):
        root = folder.resolve()
        if (target == root and not same_folder_ok) or root in target.parents:
            raise OutputError(
                f"{out}: inside {folder}, which this command reads its images from, so the next run would read "
                f"{what} back as images: give {flag} outside it"
            )


def _scan_folder(root: Path, skipped: list[tuple[str, str]]) -> list[Path]:
    found: list[Path] = []
    seen: dict[tuple[int, int], str] = {}

    def visit(folder: Path) -> None:
        try:
            status = folder.stat()
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as error:
            skipped.append((str(folder), f"cannot read the folder ({error.strerror or error})"))
            return
        identity = (status.st_dev, status.st_ino)
        if identity in seen:
            skipped.append((str(folder), f"same folder as {seen[identity]} (symbolic link loop or second link), scanned once"))
            return
        seen[identity] = str(folder)
        for entry in entries:
            child = Path(entry.path)
            try:
                is_dir = entry.is_dir()  # follows links
                is_file = entry.is_file()
            except OSError as error:
                skipped.append((str(child), f"cannot read it ({error.strerror or error})"))
                continue
            if is_dir:
                visit(child)
            elif is_file:
                if child.suffix.lower() in IMAGE_SUFFIXES:
                    found.append(child)
            else:
                skipped.append((str(child), _left_out(child) or "not a regular file"))

    visit(root)
    return found


def _left_out(path: Path) -> str | None:
    """Why a glob match or folder entry that is not a folder is left out: "" for a folder, None to keep it."""
    try:
        mode = os.stat(path).st_mode  # follows links, opens nothing
    except FileNotFoundError:
        return "broken symbolic link" if os.path.islink(path) else "vanished during the scan"
    except OSError as error:
        return f"cannot read it ({error.strerror or error})"
    if stat.S_ISDIR(mode):
        return ""
    return special_file_reason(mode)


# (real path, size, mtime, inode) -> sha256, so re-checking an unchanged file is free.
_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file's content (following symlinks).

    Digests are remembered per (path, size, mtime, inode), so checking the same large weight
    file again in one process costs nothing, while any rewrite of the file is noticed.

    Args:
        path: The file to hash.

    Returns:
        The lowercase hex digest.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    real = os.path.realpath(path)
    stat = os.stat(real)
    key = (real, stat.st_size, stat.st_mtime_ns, stat.st_ino)
    digest = _DIGESTS.get(key)
    if digest is None:
        hasher = hashlib.sha256()
        with open(real, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(block)
        digest = _DIGESTS[key] = hasher.hexdigest()
    return digest
