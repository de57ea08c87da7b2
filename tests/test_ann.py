"""Indexes beyond RAM: a forced IVF-PQ index answers as the exact one does, from memory-mapped files."""

from __future__ import annotations

import shutil

import faiss
import numpy as np
import pytest

from bot.answering.answer import Answerer
from config import load_settings
from index.build import build_index
from index.search.hybrid import Searcher
from index.status import index_status
from index.storage import ann, store
from tests.conftest import SEED, SHARED_CACHE, make_settings

QUESTIONS = [
    "How many troops would Pakistan send to Gaza?",
    "Who wrote this?",
    "What is the title of this article?",
]


@pytest.fixture(scope="module")
def seed_indexes(tmp_path_factory):
    """The seed article indexed twice: exact (flat) and forced IVF-PQ."""
    root = tmp_path_factory.mktemp("ann")
    (root / "corpus").mkdir()
    shutil.copy(SEED, root / "corpus" / SEED.name)
    flat = load_settings(corpus_dir=root / "corpus", index_dir=root / "flat", cache_dir=SHARED_CACHE)
    ivfpq = load_settings(corpus_dir=root / "corpus", index_dir=root / "ivfpq", cache_dir=SHARED_CACHE,
                          index_type="ivfpq")
    build_index(flat)
    build_index(ivfpq)
    return flat, ivfpq


def test_a_forced_ivfpq_index_answers_the_clear_questions_as_the_exact_one(seed_indexes):
    flat, ivfpq = seed_indexes
    exact, compressed = Answerer(flat), Answerer(ivfpq)
    for question in QUESTIONS:
        expected, got = exact.answer(question), compressed.answer(question)
        assert got.answered == expected.answered, question
        assert got.quotes[0].text == expected.quotes[0].text, question
        for quote in got.quotes:  # verbatim holds whatever the index type
            text = (ivfpq.corpus_dir / quote.source).read_text(encoding="utf-8")
            assert text[quote.start : quote.end] == quote.text


def test_the_ivfpq_generation_is_compressed_memory_mapped_and_says_why(seed_indexes):
    _, settings = seed_indexes
    generation = store.current_generation(settings.index_dir)
    manifest = store.Manifest.read(generation)
    assert manifest.faiss_type.startswith("ivfpq") and manifest.sentence_codec.startswith("pq")
    assert not (generation / store.SENTENCE_VECTORS).exists() and (generation / ann.SENTENCE_CODES).exists()
    # Reopened from disk: the inverted lists are mapped from the file, not read into memory.
    searcher = Searcher(settings, lambda question: np.zeros(manifest.dimension, dtype=np.float32))
    inverted = faiss.downcast_InvertedLists(faiss.extract_index_ivf(searcher._faiss._index).invlists)
    assert isinstance(inverted, faiss.OnDiskInvertedLists)
    searcher.close()
    status = index_status(settings)
    assert status["index_type"].startswith("ivfpq (index_type = ivfpq); sentence vectors as PQ codes (pq192x")


def test_the_index_type_is_chosen_by_size_and_a_forced_change_rebuilds(tmp_path):
    settings = make_settings(tmp_path, faiss_exact_max=10, ann_threshold_passages=100)
    assert ann.choose_index_type(settings, 10).kind == "flat"
    assert ann.choose_index_type(settings, 11).kind == "ivf"
    assert ann.choose_index_type(settings, 100).reason == "100 passages >= ann_threshold_passages (100)"
    (tmp_path / "corpus").mkdir()
    shutil.copy(SEED, tmp_path / "corpus" / SEED.name)
    build_index(make_settings(tmp_path))
    rebuilt = build_index(make_settings(tmp_path, index_type="ivfpq"))
    assert rebuilt.full_reason == "index type changed: flat -> ivfpq"


def test_rescoring_the_shortlist_finds_the_exact_nearest_passages(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((2000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    settings = make_settings(tmp_path, faiss_nprobe=64, ann_pq_m=4, ann_rescore_factor=10)
    ann.write_ivfpq(tmp_path, vectors, settings)
    index = store.read_vectors(tmp_path, settings.faiss_nprobe)
    stored = np.load(tmp_path / store.PASSAGE_VECTORS_NPY, mmap_mode="r")
    queries = vectors[:50] + 0.01 * rng.standard_normal((50, 32)).astype(np.float32)
    scores, ids = ann.RescoredIndex(index, stored, settings.ann_rescore_factor).search(queries, 5)
    assert (ids[:, 0] == np.arange(50)).all()
    exact = np.einsum("qd,qkd->qk", queries, vectors[ids])
    np.testing.assert_allclose(scores, exact, atol=2e-3)  # exact scores (from float16), best first
    assert (np.diff(scores, axis=1) <= 0).all()
