"""A persistent description cache (stdlib sqlite3, WAL) and the describer wrapper that uses it.

Keyed by (sha256 of the decoded image pixels, model id, prompt id): the same pixels hit
the same row whether they come from a file, an array or a tensor, and a changed prompt or
model never reuses an old text. Only successful texts are stored; failures are retried next run.
Nothing about the client (URL, API key) is stored.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir

from realness.describers.base import BaseDescriber, Description
from realness.errors import CacheError
from realness.io.inputs import pixel_sha256, split_batch

CACHE_DIR_ENV = "REALNESS_CACHE_DIR"
CACHE_FILE_NAME = "descriptions.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS descriptions (
    image_sha256 TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_id TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (image_sha256, model, prompt_id)
);
CREATE TABLE IF NOT EXISTS file_pixels_v2 (
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    image_sha256 TEXT NOT NULL,
    PRIMARY KEY (path, size, mtime_ns, ctime_ns, inode)
);
-- The first layout trusted size and mtime alone, which `cp -p` and `rsync -t` restore by hand.
DROP TABLE IF EXISTS file_pixels
"""

#: ``(absolute path, size, mtime_ns, ctime_ns, inode)``: what a file must still match for its
#: remembered pixel hash to be trusted. A user can restore size and mtime by hand, not the
#: status-change time or the inode a rewrite gives the file.
FileStat = tuple[str, int, int, int, int]


def default_cache_path() -> Path:
    """``$REALNESS_CACHE_DIR/descriptions.sqlite3``, else the same file in the user cache dir."""
    directory = os.environ.get(CACHE_DIR_ENV)
    if directory:
        return Path(directory) / CACHE_FILE_NAME
    return Path(user_cache_dir("realness")) / CACHE_FILE_NAME


class DescriptionCache:
    """Description texts on disk, safe with several processes reading and writing at once.

    Every operation opens its own short-lived connection, so one cache object can be used
    from any thread; WAL mode lets readers run beside a writer, and the busy timeout makes
    concurrent writers wait for each other instead of failing.

    Args:
        path: The sqlite file; default :func:`default_cache_path`.
        busy_timeout: Seconds a writer waits for another process's lock.
    """

    def __init__(self, path: str | Path | None = None, *, busy_timeout: float = 30.0):
        self.path = Path(path) if path is not None else default_cache_path()
        self.busy_timeout = busy_timeout
        #: False when the file cannot be opened: the cache then reads and stores nothing.
        self.usable = True
        #: False once a write was refused (read-only file or folder): texts are still read.
        self.writable = True
        if self.path.is_dir():
            raise CacheError(f"{self.path}: is a directory; point --description-cache at a file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connection() as connection:
                connection.isolation_level = None  # the transaction below is spelled out
                _use_wal(connection, self.busy_timeout)
                # IMMEDIATE takes the write lock first: in a deferred transaction, writers that
                # create a new file together each read the schema, then fail to upgrade to a
                # write at once ("database is locked", the busy timeout does not apply).
                connection.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA};\nCOMMIT;")
        except (PermissionError, CacheError) as error:
            if not _is_read_only(error):
                raise
            self.usable = self.writable = False
            self._warn_read_only("descriptions are neither read from nor stored in it")

    def _warn_read_only(self, consequence: str) -> None:
        warnings.warn(
            f"{self.path}: the description cache is read-only, so {consequence} this run; "
            "point --description-cache (or REALNESS_CACHE_DIR) at a writable place",
            UserWarning,
            stacklevel=4,
        )

    @contextlib.contextmanager
    def _writing(self):
        """A connection for a write; a read-only cache turns the write into nothing, warned once."""
        try:
            with self._connection() as connection, connection:
                yield connection
        except CacheError as error:
            if not _is_read_only(error):
                raise
            self.writable = False
            self._warn_read_only("new descriptions are not stored in it")

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=self.busy_timeout)
        # In WAL mode NORMAL never corrupts the file; a power cut may only lose the last
        # texts, which a cache can ask for again. FULL syncs every one of many small writes.
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    @contextlib.contextmanager
    def _connection(self):
        """A short-lived connection whose sqlite errors name this file and what to do."""
        try:
            with closing(self._connect()) as connection:
                yield connection
        except sqlite3.DatabaseError as error:
            raise CacheError(_cache_problem(self.path, error)) from None

    def get_many(self, image_keys: Iterable[str], model: str, prompt_id: str) -> dict[str, str]:
        """The cached texts for these images.

        Args:
            image_keys: ``pixel_sha256`` values.
            model: The describer's model id.
            prompt_id: The prompt's id.

        Returns:
            ``{image_key: text}`` for the keys found (missing keys are absent).
        """
        keys = list(dict.fromkeys(image_keys))
        found: dict[str, str] = {}
        if not self.usable:
            return found
        with self._connection() as connection:
            # Chunks stay under sqlite's limit on bound parameters.
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = connection.execute(
                    f"SELECT image_sha256, text FROM descriptions "
                    f"WHERE model = ? AND prompt_id = ? AND image_sha256 IN ({marks})",
                    (model, prompt_id, *chunk),
                )
                found.update(rows)
        return found

    def put_many(self, texts: dict[str, str], model: str, prompt_id: str) -> None:
        """Store texts (a later text for the same key replaces the earlier one).

        Args:
            texts: ``{image_key: text}``.
            model: The describer's model id.
            prompt_id: The prompt's id.
        """
        if not texts or not self.writable:
            return
        now = time.time()
        with self._writing() as connection:
            connection.executemany(
                "INSERT OR REPLACE INTO descriptions VALUES (?, ?, ?, ?, ?)",
                [(key, model, prompt_id, text, now) for key, text in texts.items()],
            )

    def get_file_keys(self, stats: Iterable[FileStat]) -> dict[FileStat, str]:
        """The pixel hashes remembered for files, by :data:`FileStat`.

        Lets a re-run find cached descriptions without decoding the files again; any change
        to a file's size, modification time, status-change time or inode makes it a miss.
        """
        found: dict[FileStat, str] = {}
        if not self.usable:
            return found
        with self._connection() as connection:
            for stat in dict.fromkeys(stats):
                row = connection.execute(
                    "SELECT image_sha256 FROM file_pixels_v2 "
                    "WHERE path = ? AND size = ? AND mtime_ns = ? AND ctime_ns = ? AND inode = ?",
                    stat,
                ).fetchone()
                if row is not None:
                    found[stat] = row[0]
        return found

    def put_file_keys(self, keys: dict[FileStat, str]) -> None:
        """Remember the pixel hash of files (see :meth:`get_file_keys`)."""
        if not keys or not self.writable:
            return
        with self._writing() as connection:
            connection.executemany(
                "INSERT OR REPLACE INTO file_pixels_v2 VALUES (?, ?, ?, ?, ?, ?)",
                [(*stat, key) for stat, key in keys.items()],
            )

    def __len__(self) -> int:
        if not self.usable:
            return 0
        with self._connection() as connection:
            return connection.execute("SELECT COUNT(*) FROM descriptions").fetchone()[0]


class CachedDescriber(BaseDescriber):
    """Wrap a describer so that images already described (same pixels, model and prompt) cost nothing.

    Cache hits come back with ``cached=True`` and zero tokens. Identical images within
    one batch are described once.

    Args:
        describer: The describer to wrap (any :class:`BaseDescriber`).
        cache: A :class:`DescriptionCache`, a path to its file, or None for the default location.
    """

    def __init__(self, describer: BaseDescriber, cache: DescriptionCache | str | Path | None = None):
        super().__init__(describer.model, describer.prompt)
        self.describer = describer
        self.cache = cache if isinstance(cache, DescriptionCache) else DescriptionCache(cache)
        self._local = threading.local()  # pixel hashes of the current call, per thread

    def describe(self, images: Any, *, on_error: str = "raise") -> list[Description]:
        """Like :meth:`BaseDescriber.describe`; files already described are not even decoded.

        A file's pixel hash is remembered by (path, size, modification time), so a re-run over
        the same files answers from the cache without reading them.
        """
        items, _ = split_batch(images)
        stats = [_file_stat(item) for item in items]
        known = self.cache.get_file_keys(s for s in stats if s is not None)
        texts = self.cache.get_many(known.values(), self.model, self.prompt.id)
        answered = {
            i: Description.success(str(items[i]), texts[known[stat]], self.model, self.prompt.id, cached=True)
            for i, stat in enumerate(stats)
            if stat in known and known[stat] in texts
        }
        rest = [i for i in range(len(items)) if i not in answered]
        self._local.hashes = {}
        described = super().describe([items[i] for i in rest], on_error=on_error) if rest else []
        self.cache.put_file_keys(
            {stats[i]: self._local.hashes[d.item] for i, d in zip(rest, described) if stats[i] is not None and d.item in self._local.hashes}
        )
        results = dict(answered)
        results.update(zip(rest, described))
        return [results[i] for i in range(len(items))]

    def describe_tensors(self, images: Sequence[Any], names: Sequence[str]) -> list[Description]:
        """Describe decoded images, reading and filling the cache.

        Args:
            images: Decoded images (3×H×W float tensors in [0, 1]).
            names: A readable name per image.

        Returns:
            One description per image, in order.
        """
        keys = [pixel_sha256(image) for image in images]
        self._local.hashes = dict(zip(names, keys))
        hits = self.cache.get_many(keys, self.model, self.prompt.id)
        first_miss: dict[str, int] = {}
        for index, key in enumerate(keys):
            if key not in hits:
                first_miss.setdefault(key, index)
        missing = list(first_miss.values())
        fresh = self.describer.describe_tensors([images[i] for i in missing], [names[i] for i in missing])
        fresh_by_key = {keys[i]: description for i, description in zip(missing, fresh)}
        self.cache.put_many(
            {key: d.text for key, d in fresh_by_key.items() if d.ok and d.text is not None},
            self.model,
            self.prompt.id,
        )
        results: list[Description] = []
        for index, (key, name) in enumerate(zip(keys, names)):
            if key in hits:
                results.append(Description.success(name, hits[key], self.model, self.prompt.id, cached=True))
            elif first_miss[key] == index:
                results.append(fresh_by_key[key])
            else:
                results.append(_reuse(fresh_by_key[key], name))
        return results


def _file_stat(item: Any) -> FileStat | None:
    """The :data:`FileStat` of an existing file item, else None."""
    if not isinstance(item, (str, os.PathLike)):
        return None
    try:
        path = Path(item).resolve()
        stat = path.stat()
    except OSError:
        return None
    return (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino) if path.is_file() else None


def _use_wal(connection: sqlite3.Connection, patience: float) -> None:
    """Switch the file to WAL, waiting up to ``patience`` seconds for other processes.

    While another process creates the same new file, sqlite refuses the switch at once
    ("database is locked") without calling its busy handler, so the wait is done here.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _is_read_only(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, PermissionError) or "readonly" in text or "read-only" in text or "unable to open" in text


def _cache_problem(path: Path, error: sqlite3.DatabaseError) -> str:
    text = str(error)
    if "not a database" in text or "malformed" in text:
        return (
            f"{path}: not a usable description cache ({text}); delete it (it only holds cached "
            "descriptions) or point --description-cache elsewhere"
        )
    return f"{path}: description cache error ({text}); point --description-cache elsewhere or delete the file"


def _reuse(description: Description, name: str) -> Description:
    """A duplicate image's copy of a description made this run (its tokens counted once)."""
    return replace(description.as_cached() if description.ok else description, item=name)
