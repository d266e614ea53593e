"""A persistent description cache (stdlib sqlite3, WAL) and the describer wrapper that uses it.

Keyed by (sha256 of the decoded image pixels, model id, prompt id): the same pixels hit
the same row whether they come from a file, an array or a tensor, and a changed prompt or
model never reuses an old text. Only successful texts are stored; failures are retried next run.
Nothing about the client (URL, API key) is stored.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any, Union

from realness.describers.base import BaseDescriber, Description

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
)
"""


def default_cache_path() -> Path:
    """``$REALNESS_CACHE_DIR/descriptions.sqlite3``, else the same file in the user cache dir."""
    directory = os.environ.get(CACHE_DIR_ENV)
    if directory:
        return Path(directory) / CACHE_FILE_NAME
    from platformdirs import user_cache_dir

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

    def __init__(self, path: Union[str, Path, None] = None, *, busy_timeout: float = 30.0):
        self.path = Path(path) if path is not None else default_cache_path()
        self.busy_timeout = busy_timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as connection, connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=self.busy_timeout)

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
        with closing(self._connect()) as connection:
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
        if not texts:
            return
        now = time.time()
        with closing(self._connect()) as connection, connection:
            connection.executemany(
                "INSERT OR REPLACE INTO descriptions VALUES (?, ?, ?, ?, ?)",
                [(key, model, prompt_id, text, now) for key, text in texts.items()],
            )

    def __len__(self) -> int:
        with closing(self._connect()) as connection:
            return connection.execute("SELECT COUNT(*) FROM descriptions").fetchone()[0]


class CachedDescriber(BaseDescriber):
    """Wrap a describer so that images already described (same pixels, model and prompt) cost nothing.

    Cache hits come back with ``cached=True`` and zero tokens. Identical images within
    one batch are described once.

    Args:
        describer: The describer to wrap (any :class:`BaseDescriber`).
        cache: A :class:`DescriptionCache`, a path to its file, or None for the default location.
    """

    def __init__(self, describer: BaseDescriber, cache: Union[DescriptionCache, str, Path, None] = None):
        super().__init__(describer.model, describer.prompt)
        self.describer = describer
        self.cache = cache if isinstance(cache, DescriptionCache) else DescriptionCache(cache)

    def describe_tensors(self, images: Sequence[Any], names: Sequence[str]) -> list[Description]:
        """Describe decoded images, reading and filling the cache.

        Args:
            images: Decoded images (3×H×W float tensors in [0, 1]).
            names: A readable name per image.

        Returns:
            One description per image, in order.
        """
        from realness.inputs import pixel_sha256

        keys = [pixel_sha256(image) for image in images]
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


def _reuse(description: Description, name: str) -> Description:
    """A duplicate image's copy of a description made this run (its tokens counted once)."""
    return replace(description.as_cached() if description.ok else description, item=name)
