"""Distributed builds on Ray: the same index as a local build, retried workers, failed drivers.

One local Ray instance (2 CPUs) is started for the session; the tests that need
it are skipped when the cluster extra (ray) is not installed.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from bot.answering.answer import Answerer
from bot.cli.main import main
from config import load_settings
from index.build import build_index
from index.storage import store
from tests.conftest import SHARED_CACHE, write_corpus

CORPUS = {
    "bees.txt": "Bees make honey in hives. Honey keeps for years.\n\nWasps do not make honey at all.",
    "cat.md": "# The lighthouse\n\nThe keepers feed the lighthouse cat sardines every evening. The cat sleeps by the lamp.",
    "leave.txt": "Every employee gets twenty-seven days of paid leave a year. Unused days expire in March.",
    "trains.txt": "The night train to Vienna leaves at 22:40 from platform 7. It arrives at 9:15 the next morning.",
}
QUESTIONS = ["What do the keepers feed the lighthouse cat?", "How many days of paid leave do I get?",
             "When does the night train to Vienna leave?", "Where do bees make honey?"]


@pytest.fixture(scope="session")
def ray_instance():
    """A local Ray instance for the session: 2 CPUs, no dashboard, its files in a temporary directory."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_AUTH_TOKEN", os.urandom(16).hex())
    ray = pytest.importorskip("ray")
    temp = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths must fit 107 bytes
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             _temp_dir=temp, _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


def _settings(root: Path, name: str, **overrides):
    """Settings with an index and an empty embedding cache of their own (the ONNX export is shared)."""
    return load_settings(corpus_dir=root / "corpus", index_dir=root / name, cache_dir=SHARED_CACHE,
                         embedding_cache=root / f"{name}-embeddings.sqlite", **overrides)


def _passages(settings) -> list[tuple]:
    generation = store.current_generation(settings.index_dir)
    connection = sqlite3.connect(generation / store.METADATA)
    rows = connection.execute(
        "SELECT d.source, p.start, p.end FROM passages p JOIN documents d ON d.id = p.document_id ORDER BY p.id"
    ).fetchall()
    connection.close()
    return rows


def _vectors(settings, name: str) -> np.ndarray:
    return np.load(store.current_generation(settings.index_dir) / name).astype(np.float32)


def test_a_distributed_build_makes_the_same_index_and_answers_as_a_local_one(ray_instance, tmp_path):
    write_corpus(tmp_path, {**CORPUS, "bad.txt": b"\xff\xfe\xfa", "empty.md": ""})
    local, distributed = _settings(tmp_path, "local"), _settings(tmp_path, "cluster", build_cluster="auto")
    expected = build_index(local)
    summary = build_index(distributed)
    assert summary.embedded == expected.embedded > 0  # the cache was empty: every text went to the cluster
    assert summary.skipped == expected.skipped and len(summary.skipped) == 2  # read by the workers, same reasons
    assert _passages(distributed) == _passages(local)
    for name in (store.PASSAGE_VECTORS_NPY, store.SENTENCE_VECTORS):
        ours, theirs = _vectors(distributed, name), _vectors(local, name)
        cosines = np.sum(ours * theirs, axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
        assert cosines.min() >= 0.9999, name
    for question in QUESTIONS:
        assert Answerer(distributed).answer(question).quotes == Answerer(local).answer(question).quotes
    # Only texts the embedding cache lacks go to the cluster.
    write_corpus(tmp_path, {"trains.txt": CORPUS["trains.txt"] + " Bicycles travel free."})
    assert build_index(distributed).embedded == 2  # the new passage and its new sentence


def test_a_cluster_build_with_nothing_new_connects_to_no_cluster(ray_instance, tmp_path, monkeypatch):
    from index import cluster

    write_corpus(tmp_path, CORPUS)
    settings = _settings(tmp_path, "cluster", build_cluster="auto")
    build_index(settings)
    connected = []
    monkeypatch.setattr(cluster, "_start", lambda ray, settings: connected.append(settings) or False)
    build_index(settings)  # nothing changed
    assert connected == []
    write_corpus(tmp_path, {"bees.txt": CORPUS["bees.txt"] + " Drones do not sting."})
    build_index(settings)
    assert len(connected) == 1  # a changed file is read, and its new texts embedded, on the cluster


def test_a_task_whose_worker_dies_is_retried(ray_instance, tmp_path):
    from index.cluster import remote

    marker = tmp_path / "died-once"

    def dies_the_first_time() -> int:
        if not marker.exists():
            marker.touch()
            os._exit(1)  # the worker process dies mid-task, as a killed or crashed worker does
        return os.getpid()

    assert ray_instance.get(remote(ray_instance, dies_the_first_time).remote()) > 0
    assert marker.exists()


def test_a_driver_that_fails_mid_build_leaves_the_previous_index_answering(ray_instance, tmp_path, monkeypatch):
    from index import cluster

    write_corpus(tmp_path, CORPUS)
    settings = _settings(tmp_path, "cluster", build_cluster="auto")
    build_index(settings)
    before = Answerer(settings).answer(QUESTIONS[0]).quotes
    write_corpus(tmp_path, {"cat.md": "# The lighthouse\n\nThe keepers feed the lighthouse cat tuna on Sundays."})

    def fails(*arguments, **options):
        raise RuntimeError("the driver failed mid-build")

    monkeypatch.setattr(cluster.Cluster, "embed", fails)
    with pytest.raises(RuntimeError, match="mid-build"):
        build_index(settings)
    # The previous index still answers, with only the quotes its files still hold, and says it is stale.
    answer = Answerer(settings).answer(QUESTIONS[0])
    now = (settings.corpus_dir / "cat.md").read_text(encoding="utf-8")
    assert answer.quotes == tuple(quote for quote in before if now[quote.start : quote.end] == quote.text)
    assert answer.stale == ("cat.md",)
    monkeypatch.undo()
    build_index(settings)  # the next build publishes the change and clears what the failed one left
    assert "tuna" in Answerer(settings).answer(QUESTIONS[0]).quotes[0].text
    assert [p.name for p in settings.index_dir.iterdir() if p.name.startswith(".building")] == []


def test_without_the_cluster_extra_a_cluster_build_is_one_clear_error(tmp_path, monkeypatch, capsys):
    write_corpus(tmp_path, CORPUS)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    code = main(["--corpus", str(tmp_path / "corpus"), "--index", str(tmp_path / "index"),
                 "index", "build", "--cluster", "auto"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "verbatim: error: install the cluster extra: pip install '.[cluster]'\n"
