"""Build an index of a corpus: load -> chunk -> embed -> store."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from config import Settings
from index import store
from index.chunk import LineIndex, chunk
from index.errors import BuildLocked, IndexCorrupt, IndexMissing
from index.lexical import build_lexical
from index.load import Unreadable, discover, read_document
from index.types import Document, Passage, Skipped


class Progress(Protocol):
    """Where a build reports long work (the CLI draws bars on stderr)."""

    def start(self, label: str, total: int) -> None: ...
    def advance(self, count: int) -> None: ...


class SilentProgress:
    """Reports nothing."""

    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass


@dataclass(frozen=True)
class BuildSummary:
    """What a build did."""

    documents: int
    passages: int
    sentences: int
    skipped: tuple[Skipped, ...]
    seconds: float
    generation: str
    up_to_date: bool = False
    reasons: tuple[str, ...] = field(default_factory=tuple)


def build_index(settings: Settings, progress: Progress | None = None, force: bool = False) -> BuildSummary:
    """Index the corpus into a new generation, unless the current one already matches it."""
    progress = progress or SilentProgress()
    started = time.perf_counter()
    with _build_lock(settings.index_dir):
        store.remove_stale(settings.index_dir)
        documents, skipped = load_corpus(settings)
        if not force:
            current = _current_if_up_to_date(settings, documents)
            if current is not None:
                return BuildSummary(0, 0, 0, tuple(skipped), time.perf_counter() - started, current, up_to_date=True)
        generation = _write_generation(settings, documents, progress)
        store.remove_stale(settings.index_dir)
    manifest = store.Manifest.read(generation)
    return BuildSummary(
        manifest.documents, manifest.passages, manifest.sentences, tuple(skipped),
        time.perf_counter() - started, generation.name,
    )


def load_corpus(settings: Settings) -> tuple[list[Document], list[Skipped]]:
    """Every readable document of the corpus, and every file skipped with its reason."""
    files, skipped = discover(settings.corpus_dir)
    documents = []
    for file in files:
        try:
            documents.append(read_document(file, int(settings.max_file_mb * 1_000_000)))
        except Unreadable as reason:
            skipped.append(Skipped(file.source, str(reason)))
    return documents, skipped


def _current_if_up_to_date(settings: Settings, documents: list[Document]) -> str | None:
    try:
        generation = store.current_generation(settings.index_dir)
        manifest = store.Manifest.read(generation)
    except (IndexMissing, IndexCorrupt):
        return None
    if settings_changed(settings, manifest):
        return None
    with store.open_metadata(generation) as connection:
        indexed = dict(connection.execute("SELECT source, sha256 FROM documents"))
    return generation.name if indexed == {d.source: d.sha256 for d in documents} else None


def settings_changed(settings: Settings, manifest: store.Manifest) -> bool:
    return (
        manifest.format_version != store.FORMAT_VERSION
        or manifest.model != settings.model
        or manifest.passage_max_chars != settings.passage_max_chars
        or manifest.passage_min_chars != settings.passage_min_chars
        or _engine_changed(settings, manifest)
    )


def _engine_changed(settings: Settings, manifest: store.Manifest) -> bool:
    if settings.embedding_engine == "sentence-transformers":
        return manifest.engine != "sentence-transformers"
    wanted = "onnx-int8" if settings.onnx_int8 else "onnx"
    # "auto" accepts an index whose model was tried and could not be exported.
    unexportable = settings.embedding_engine == "auto" and manifest.engine_note.startswith("no ONNX export")
    return manifest.engine != wanted and not unexportable


def _write_generation(settings: Settings, documents: list[Document], progress: Progress) -> Path:
    import faiss

    from index.engine import build_engine

    passages_by_document = [chunk(d, settings.passage_max_chars, settings.passage_min_chars) for d in documents]
    passage_texts = [d.text[p.start : p.end] for d, ps in zip(documents, passages_by_document) for p in ps]
    sentence_texts = [
        d.text[s.start : s.end] for d, ps in zip(documents, passages_by_document) for p in ps for s in p.sentences
    ]
    directory = store.new_build_directory(settings.index_dir)
    engine = build_engine(settings, directory)
    progress.start("embedding", len(passage_texts) + len(sentence_texts))
    passage_vectors = engine.embedder.embed(passage_texts, progress.advance)
    sentence_vectors = engine.embedder.embed(sentence_texts, progress.advance)

    connection = store.create_metadata(directory)
    with connection:
        _insert_metadata(connection, documents, passages_by_document)
    connection.close()
    index = faiss.IndexFlatIP(engine.embedder.dimension)
    index.add(passage_vectors)
    faiss.write_index(index, str(directory / store.PASSAGE_VECTORS))
    np.save(directory / store.SENTENCE_VECTORS, sentence_vectors.astype(np.float16), allow_pickle=False)
    build_lexical(passage_texts).save(directory)
    manifest = store.Manifest(
        format_version=store.FORMAT_VERSION,
        model=settings.model,
        dimension=engine.embedder.dimension,
        passage_max_chars=settings.passage_max_chars,
        passage_min_chars=settings.passage_min_chars,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        documents=len(documents),
        passages=len(passage_texts),
        sentences=len(sentence_texts),
        engine=engine.name,
        engine_note=engine.note,
    )
    return store.publish(directory, manifest)


def _insert_metadata(connection, documents: list[Document], passages_by_document: list[list[Passage]]) -> None:
    indexed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    passage_id = sentence_id = 0
    for document_id, (document, passages) in enumerate(zip(documents, passages_by_document)):
        connection.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (document_id, document.source, document.sha256, document.kind, len(document.text),
             ",".join(map(str, document.page_starts)), indexed_at, document.text),
        )
        lines = LineIndex(document.text)
        for passage in passages:
            connection.execute(
                "INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?, ?)",
                (passage_id, document_id, passage.start, passage.end, passage.line, sentence_id, len(passage.sentences)),
            )
            connection.executemany(
                "INSERT INTO sentences VALUES (?, ?, ?, ?, ?, ?)",
                [(sentence_id + offset, document_id, passage_id, s.start, s.end, lines.line_of(s.start))
                 for offset, s in enumerate(passage.sentences)],
            )
            sentence_id += len(passage.sentences)
            passage_id += 1


@contextmanager
def _build_lock(index_dir: Path) -> Iterator[None]:
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / "build.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildLocked(f"another build is running on {index_dir}; wait for it to finish") from None
        yield
