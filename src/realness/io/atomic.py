"""Files and folders written atomically: into a temporary sibling, then renamed over the target.

An interrupted or failed write leaves the previous file (or none), never half a file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Union

from realness.errors import OutputWriteError

PathLike = Union[str, "os.PathLike[str]"]


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


# mkstemp and mkdtemp create 0600 files and 0700 folders; a finished output gets what open()
# and mkdir would have given it.
_FILE_MODE = 0o666 & ~_umask()
_FOLDER_MODE = 0o777 & ~_umask()


@contextlib.contextmanager
def atomic_output(path: PathLike, mode: str = "w", *, encoding: str | None = "utf-8", newline: str | None = "") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one rename.

    The folder is created if needed. On any exception (Ctrl-C included) the temporary file
    is removed and ``path`` is left as it was.

    Args:
        path: the file to (re)write.
        mode: ``"w"`` for text or ``"wb"`` for bytes.
        encoding: text encoding (ignored for bytes).
        newline: passed to :func:`open` (``""`` keeps CSV line endings as the writer makes them).

    Yields:
        The open temporary file.

    Raises:
        OutputWriteError: the file could not be written or put in place (disk full, no
            permission, immutable, name too long); the message names ``path``, never the
            temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = None
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        text = "b" not in mode
        with os.fdopen(descriptor, mode, encoding=encoding if text else None, newline=newline if text else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, _FILE_MODE)
        os.replace(temporary, path)
    except OSError as error:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        if temporary is not None and error.filename not in (None, temporary, str(path)):
            raise  # about another file (one the writer read): its own message names it
        raise write_error(path, error) from None
    except BaseException:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        raise


def write_error(path: PathLike, error: OSError) -> OutputWriteError:
    """``path: cannot write it (REASON)``: a failed write told by the file the user named."""
    reason = error.strerror or str(error)
    if error.errno in (errno.EPERM, errno.EACCES) and os.path.exists(path):
        reason += "; is it read-only or immutable (lsattr)?"
    return OutputWriteError(f"{path}: cannot write it ({reason})")


@contextlib.contextmanager
def atomic_directory(path: PathLike) -> Iterator[Path]:
    """Fill a temporary folder beside ``path``; on success it takes ``path``'s place.

    The files of an existing ``path`` that the new folder does not hold are carried over
    (hard links, or copies across filesystems), so nothing else in it is lost. On any
    exception (Ctrl-C included) the temporary folder is removed and ``path`` is left as it
    was. The swap is two renames: a crash between them (microseconds) leaves the previous
    folder beside ``path`` as ``.NAME.*.old``.

    Args:
        path: the folder to (re)write.

    Yields:
        The temporary folder, to write the new files into.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield staging
        for written in staging.rglob("*"):
            if written.is_file() and not written.is_symlink():
                _fsync(written)  # on disk before the rename makes them the folder's files
        if path.exists():
            for entry in path.iterdir():
                if not (staging / entry.name).exists():
                    _carry_over(entry, staging / entry.name)
            previous = staging.with_suffix(".old")
            os.replace(path, previous)
            try:
                os.replace(staging, path)
            except BaseException:
                os.replace(previous, path)
                raise
            shutil.rmtree(previous, ignore_errors=True)
        else:
            os.replace(staging, path)
        os.chmod(path, _FOLDER_MODE)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _carry_over(source: Path, target: Path) -> None:
    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(source, target)


def _link_or_copy(source: PathLike, target: PathLike) -> None:
    if os.path.islink(source):
        os.symlink(os.readlink(source), target)
        return
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or one without hard links
        shutil.copy2(source, target)


def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_output(path) as handle:
        handle.write(text)
    return Path(path)


def write_file_atomic(path: PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Let ``write`` fill a temporary binary file beside ``path``, then rename it into place.

    For writers that take an open file (``figure.savefig(handle, format=...)``,
    ``image.save(handle, format=...)``, ``numpy.save``); see :func:`atomic_output`.

    Returns:
        ``path`` as a Path.
    """
    with atomic_output(path, "wb") as handle:
        write(handle)
    return Path(path)
