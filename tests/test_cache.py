import numpy as np

from index.cache import KEEP_SECONDS, EmbeddingCache


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
