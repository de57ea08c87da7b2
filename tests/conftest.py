"""Shared fixtures: tiny corpora in tmp_path and settings that point at them.

The real bundled model is used throughout; `index.embedding.embed.load_embedder` caches it,
so a test session loads it once.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "seeds" / "000_23546ede53cb2a58.txt"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Settings must come from the test, not from a developer's shell or .env.
    for name in [n for n in os.environ if n.startswith("VERBATIM_")]:
        monkeypatch.delenv(name)
    # Unset index, cache and feedback paths default to the user's data directory: never the real one.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("VERBATIM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


SHARED_CACHE = Path(tempfile.mkdtemp(prefix="verbatim-test-cache-"))
atexit.register(shutil.rmtree, SHARED_CACHE, True)


# Thresholds that let every question be answered, whichever of retrieval, the ranker or the
# selector decides: for tests of what quotes look like, not of when Verbatim refuses.
ANSWER_ALWAYS = {"min_confidence": -10.0, "ranker_min_probability": 0.0, "selector_min_probability": 0.0,
                 "reader_min_probability": 0.0}


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings whose corpus and index live under tmp_path (the ONNX export is shared by the session)."""
    overrides.setdefault("cache_dir", SHARED_CACHE)
    return load_settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", **overrides)


def settings_with_own_cache(tmp_path: Path) -> Settings:
    """Settings with a private, empty embedding cache that still reuses the session's ONNX export (linked)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    for export in SHARED_CACHE.glob("onnx-*"):
        shutil.copytree(export, cache / export.name, copy_function=os.link)
    return make_settings(tmp_path, cache_dir=cache)


def write_corpus(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    """Create tmp_path/corpus with the given files (text or bytes)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    for name, content in files.items():
        path = corpus / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return corpus


def built_corpus(root: Path, files: dict[str, str | bytes]) -> Path:
    """`files` as root/corpus, indexed into root/index: a module's corpus, built once for its tests to copy."""
    from index.build import build_index

    write_corpus(root, files)
    build_index(make_settings(root))
    return root


def copy_built(built: Path, tmp_path: Path) -> Path:
    """A test's own copy of a built corpus and its index, which it may change."""
    for part in ("corpus", "index"):
        shutil.copytree(built / part, tmp_path / part)
    return tmp_path


@pytest.fixture
def seed_settings(tmp_path: Path) -> Settings:
    """Settings for a corpus holding just the seed article."""
    (tmp_path / "corpus").mkdir()
    shutil.copy(SEED, tmp_path / "corpus" / SEED.name)
    return make_settings(tmp_path)
