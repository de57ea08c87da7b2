"""A damaged index: every command says so in one line (exit 2), and answering falls
back to the previous intact generation where one exists, saying so on stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import Settings
from index.build import build_index
from index.embedding.embed import MODEL_FILE, TOKENIZER_FILE
from index.storage import store
from tests.conftest import ROOT, make_settings, write_corpus

BASE = {f"doc{n:02d}.txt": f"Document {n} talks about topic number {n} at some length. It has a second sentence too."
        for n in range(12)}
QUESTION = "What do the keepers feed the lighthouse cat?"


def verbatim(settings: Settings, *arguments: str) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, as a user runs it."""
    env = {**os.environ, "VERBATIM_CACHE_DIR": str(settings.cache_path), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir),
         *arguments], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("verbatim: error: "), result.stderr
    return lines[0]


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.fixture
def one_generation(tmp_path) -> Settings:
    write_corpus(tmp_path, {**BASE, "cat.txt": "The keepers feed the lighthouse cat sardines every evening."})
    settings = make_settings(tmp_path)
    build_index(settings)
    return settings


@pytest.fixture
def two_generations(one_generation: Settings) -> Settings:
    write_corpus(one_generation.corpus_dir.parent, {"cat.txt": "The keepers feed the lighthouse cat tuna every evening."})
    build_index(one_generation)
    return one_generation


def test_status_and_show_on_a_truncated_metadata_database_are_one_line_errors(one_generation):
    truncate(store.current_generation(one_generation.index_dir) / store.METADATA)
    for command in (["index", "status"], ["index", "show", "cat.txt"]):
        assert "meta.sqlite" in one_line_error(verbatim(one_generation, *command))


@pytest.mark.parametrize("damage", ["missing model", "garbage model", "garbage tokenizer"])
def test_ask_with_a_damaged_onnx_export_and_no_fallback_is_a_one_line_error(one_generation, damage):
    generation = store.current_generation(one_generation.index_dir)
    name = TOKENIZER_FILE if "tokenizer" in damage else MODEL_FILE
    (generation / name).unlink()  # the file is a hard link into the shared export: never write through it
    if damage.startswith("garbage"):
        (generation / name).write_bytes(b"\x00garbage" * 100)
    assert name in one_line_error(verbatim(one_generation, "ask", QUESTION))


def test_a_damaged_live_generation_falls_back_to_the_previous_one_and_says_so(two_generations):
    live = store.current_generation(two_generations.index_dir)
    truncate(live / store.METADATA)
    result = verbatim(two_generations, "ask", QUESTION)
    # The previous generation answers, but its text of cat.txt (sardines) is no longer the file's: withheld, and
    # nothing else passes the answer gate, so the question is not answered (exit 1) and the note says why.
    assert result.returncode == 1, result.stderr
    assert "sardines" not in result.stdout and "Index is out of date: cat.txt changed" in result.stdout
    warning, = result.stderr.strip().splitlines()
    assert warning.startswith("verbatim: warning: the live index is damaged") and "previous intact index" in warning


def test_a_garbage_model_in_the_live_generation_falls_back_too(two_generations):
    live = store.current_generation(two_generations.index_dir)
    (live / MODEL_FILE).unlink()
    (live / MODEL_FILE).write_bytes(b"not an onnx model")
    result = verbatim(two_generations, "ask", QUESTION)
    assert result.returncode == 1 and "Index is out of date: cat.txt changed" in result.stdout, result.stderr
    assert "sardines" not in result.stdout
    assert "damaged" in result.stderr


def test_the_next_build_replaces_a_damaged_index_and_keeps_its_fallback(two_generations):
    before = sorted(p.name for p in two_generations.index_dir.glob(f"{store.GENERATION_PREFIX}*"))
    truncate(store.current_generation(two_generations.index_dir) / store.METADATA)
    write_corpus(two_generations.corpus_dir.parent, {"cat.txt": "The keepers feed the lighthouse cat mackerel every evening."})
    summary = build_index(two_generations)
    assert summary.documents == len(BASE) + 1  # a full build: nothing was reused from the damaged metadata
    after = sorted(p.name for p in two_generations.index_dir.glob(f"{store.GENERATION_PREFIX}*"))
    # The new live generation and the last intact one, its fallback, are kept; the damaged one goes.
    assert after == [before[0], summary.generation]
