"""One writer per output: an exclusive lock file held for the whole of a run.

Two runs writing the same ``--out`` at once would each replace the other's table, and both
would say they succeeded. :class:`OutputLock` takes a POSIX record lock (``fcntl.lockf``)
on a lock file beside the output (``scores.csv.lock``); a second run on this machine is
refused at once with one line naming the run that holds it. The kernel drops the lock when
its process ends, however it ends (``kill -9`` included), and the process's children (data
loading workers) do not inherit it as they would a ``flock``, so a killed run never blocks a
later one. Without ``fcntl`` (Windows) there is no lock.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import time
from pathlib import Path
from typing import Union

from realness.errors import OutputBusyError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here
    fcntl = None  # type: ignore[assignment]

PathLike = Union[str, "os.PathLike[str]"]


class OutputLock:
    """An exclusive lock on ``path`` (created, and removed on :meth:`release`), naming its holder.

    Args:
        path: the lock file.
        subject: what the lock guards, for the message (the ``--out`` file).
    """

    def __init__(self, path: PathLike, subject: PathLike):
        self.path = Path(path)
        self.subject = subject
        self._descriptor: int | None = None

    def acquire(self) -> OutputLock:
        """Take the lock, or refuse.

        Raises:
            OutputBusyError: another process holds it; the message gives its pid and start time.
        """
        if fcntl is None or self._descriptor is not None:
            return self
        while True:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            try:
                fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                if error.errno not in (errno.EACCES, errno.EAGAIN):
                    os.close(descriptor)
                    raise
                holder = _holder(os.pread(descriptor, 4096, 0))
                os.close(descriptor)
                raise OutputBusyError(
                    f"{self.subject}: another realness run is writing it ({holder}); wait for it to finish, "
                    "or choose another --out"
                ) from None
            # The previous holder removes the file as it lets go: a lock taken on a removed file guards nothing.
            if _same_file(descriptor, self.path):
                break
            os.close(descriptor)
        record = {"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                  "command": " ".join(["realness", *sys.argv[1:]])[:300]}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(record).encode("utf-8", "surrogateescape"), 0)
        self._descriptor = descriptor
        return self

    def release(self) -> None:
        """Remove the lock file and let go (nothing when not held)."""
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still held, so no other run locks the file being removed
        os.close(descriptor)

    def __del__(self) -> None:  # a run that ends by an exception nobody caught still lets go
        self.release()


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        held, named = os.fstat(descriptor), os.stat(path)
    except OSError:
        return False
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)


def _holder(data: bytes) -> str:
    try:
        record = json.loads(data.decode("utf-8", "surrogateescape"))
        return f"pid {record['pid']}, started {record['started']}: {record['command']}"
    except (ValueError, KeyError, TypeError):
        return "a run that is just starting"
