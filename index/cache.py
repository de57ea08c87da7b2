"""An embedding cache: vectors by engine and exact text, so unchanged passages are never re-embedded."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# Entries no build has used for this long are dropped.
KEEP_SECONDS = 30 * 24 * 3600


class EmbeddingCache:
    """float32 vectors in SQLite, keyed by a hash of the engine's identity and the text."""

    def __init__(self, path: Path, engine_key: str, dimension: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL, used_at REAL NOT NULL)"
        )
        self._engine_key = engine_key.encode()
        self._dimension = dimension
        self._now = time.time()

    def lookup(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """Vectors for the texts (zeros where missing) and the indices of the missing ones."""
        keys = [self._key(text) for text in texts]
        found: dict[bytes, bytes] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = self._connection.execute(
                f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(chunk))})", chunk
            )
            found.update(rows)
        vectors = np.zeros((len(texts), self._dimension), dtype=np.float32)
        missing = []
        for index, key in enumerate(keys):
            blob = found.get(key)
            if blob is None or len(blob) != 4 * self._dimension:
                missing.append(index)
            else:
                vectors[index] = np.frombuffer(blob, dtype=np.float32)
        with self._connection:
            self._connection.executemany(
                "UPDATE vectors SET used_at = ? WHERE key = ?", [(self._now, key) for key in found]
            )
        return vectors, missing

    def store(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Remember vectors for texts."""
        rows = [(self._key(t), np.asarray(v, dtype=np.float32).tobytes(), self._now) for t, v in zip(texts, vectors)]
        with self._connection:
            self._connection.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)

    def prune(self) -> None:
        """Forget vectors no build has used for a month."""
        with self._connection:
            self._connection.execute("DELETE FROM vectors WHERE used_at < ?", (self._now - KEEP_SECONDS,))

    def close(self) -> None:
        self._connection.close()

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(self._engine_key + b"\0" + text.encode("utf-8", "surrogatepass")).digest()[:20]
