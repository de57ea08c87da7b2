import sqlite3

import numpy as np
import pytest

from index.embedding.cache import KEEP_SECONDS, EmbeddingCache


def test_vectors_come_back_for_the_same_engine_and_text_only(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite", "engine-a", 3)
    cache.store(["alpha", "beta"], np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32))
    vectors, missing = cache.lookup(["beta", "gamma", "alpha"])
    assert missing == [1]
    assert np.array_equal(vectors[0], [0, 1, 0]) and np.array_equal(vectors[2], [1, 0, 0])
    other = EmbeddingCache(tmp_path / "c.sqlite", "engine-b", 3)
    assert other.lookup(["alpha"])[1] == [0]


def test_prune_forgets_what_no_build_used_for_a_month(tmp_path):
    old = EmbeddingCache(tmp_path / "c.sqlite", "e", 2)
    old._now -= KEEP_SECONDS + 1
    old.store(["stale"], np.ones((1, 2), dtype=np.float32))
    old.close()
    cache = EmbeddingCache(tmp_path / "c.sqlite", "e", 2)
    cache.store(["fresh"], np.ones((1, 2), dtype=np.float32))
    cache.prune()
    assert cache.lookup(["stale", "fresh"])[1] == [0]


def _damage(path, how: str) -> None:
    if how == "garbage":
        path.write_bytes(b"this is not an SQLite database at all " * 200)
    else:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_a_damaged_cache_is_set_aside_rebuilt_and_reported(tmp_path, capsys, how):
    path = tmp_path / "cache" / "embeddings.sqlite"
    texts = [f"passage number {n}" for n in range(3000)]
    cache = EmbeddingCache(path, "e", 4)
    cache.store(texts, np.ones((len(texts), 4), dtype=np.float32))
    cache.close()
    _damage(path, how)
    cache = EmbeddingCache(path, "e", 4)
    assert cache.lookup(texts)[1] == list(range(len(texts)))  # nothing trusted from the damaged file
    cache.store(["fresh"], np.ones((1, 4), dtype=np.float32))
    cache.prune()
    assert cache.lookup(["fresh"])[1] == []
    cache.close()
    aside = [p.name for p in path.parent.iterdir() if p.name.startswith("embeddings.sqlite.corrupt-")]
    assert len(aside) == 1
    warning = capsys.readouterr().err
    assert warning.startswith("verbatim: warning: the embedding cache") and aside[0] in warning


def test_a_locked_cache_is_not_mistaken_for_a_damaged_one(tmp_path):
    path = tmp_path / "c.sqlite"
    EmbeddingCache(path, "e", 2).close()
    holder = sqlite3.connect(path)
    holder.execute("BEGIN EXCLUSIVE")
    cache = EmbeddingCache.__new__(EmbeddingCache)  # open without waiting 5 s for the lock
    cache.path, cache._engine_key, cache._dimension, cache._now = path, b"e", 2, 0.0
    cache._connection = sqlite3.connect(path, timeout=0)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        cache.store(["text"], np.ones((1, 2), dtype=np.float32))
    holder.rollback()
    assert [p.name for p in tmp_path.iterdir() if "corrupt" in p.name] == []
