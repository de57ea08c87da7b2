"""An embedding cache: vectors by engine and exact text, so unchanged passages are never re-embedded.

It is only a cache: a damaged database is set aside (renamed to
`<name>.corrupt-<time>` beside it), a fresh one takes its place, and the build goes on.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from index.notice import warn

# Entries no build has used for this long are dropped.
KEEP_SECONDS = 30 * 24 * 3600


class EmbeddingCache:
    """float32 vectors in SQLite, keyed by a hash of the engine's identity and the text."""

    def __init__(self, path: Path, engine_key: str, dimension: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._engine_key = engine_key.encode()
        self._dimension = dimension
        self._now = time.time()
        self._connection = self._guarded(self._open)

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL, used_at REAL NOT NULL)"
            )
        except BaseException:
            connection.close()
            raise
        return connection

    def lookup(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """Vectors for the texts (zeros where missing) and the indices of the missing ones."""
        keys = [self._key(text) for text in texts]
        found = self._guarded(self._find, keys)
        vectors = np.zeros((len(texts), self._dimension), dtype=np.float32)
        missing = []
        for index, key in enumerate(keys):
            blob = found.get(key)
            if blob is None or len(blob) != 4 * self._dimension:
                missing.append(index)
            else:
                vectors[index] = np.frombuffer(blob, dtype=np.float32)
        return vectors, missing

    def _find(self, keys: list[bytes]) -> dict[bytes, bytes]:
        found: dict[bytes, bytes] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = self._connection.execute(
                f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(chunk))})", chunk
            )
            found.update(rows)
        with self._connection:
            self._connection.executemany(
                "UPDATE vectors SET used_at = ? WHERE key = ?", [(self._now, key) for key in found]
            )
        return found

    def store(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Remember vectors for texts."""
        rows = [(self._key(t), np.asarray(v, dtype=np.float32).tobytes(), self._now) for t, v in zip(texts, vectors)]
        self._guarded(self._insert, rows)

    def _insert(self, rows: list[tuple[bytes, bytes, float]]) -> None:
        with self._connection:
            self._connection.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)

    def prune(self) -> None:
        """Forget vectors no build has used for a month."""
        self._guarded(self._delete_unused)

    def _delete_unused(self) -> None:
        with self._connection:
            self._connection.execute("DELETE FROM vectors WHERE used_at < ?", (self._now - KEEP_SECONDS,))

    def close(self) -> None:
        """Release the database."""
        self._connection.close()

    def _guarded(self, operation, *arguments):
        """Run `operation`; if the database turns out damaged, set it aside, start afresh and run it again."""
        try:
            return operation(*arguments)
        except sqlite3.DatabaseError as error:
            if not _is_corruption(error):
                raise
            self._set_aside(error)
            if operation != self._open:
                self._connection = self._open()
            return operation(*arguments)

    def _set_aside(self, error: sqlite3.DatabaseError) -> None:
        connection = getattr(self, "_connection", None)
        if connection is not None:
            connection.close()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm", "-journal"):  # they belong to the damaged file
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        warn(f"the embedding cache {self.path} was damaged ({error}); it was moved to {aside.name} "
             "and is being rebuilt, so this build embeds more than usual")

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(self._engine_key + b"\0" + text.encode("utf-8", "surrogatepass")).digest()[:20]


def _is_corruption(error: sqlite3.DatabaseError) -> bool:
    # "database is locked" is an OperationalError too, and not damage: only
    # SQLite's own verdicts of a damaged or foreign file count.
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
