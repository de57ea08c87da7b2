"""Build an index of a corpus: load -> chunk -> embed -> store, incrementally.

Every build writes a complete new generation; what makes a rebuild cheap is
reuse, not patching: unchanged files keep their stored text (no re-extraction),
and the embedding cache returns the vectors of every passage and sentence whose
exact text was embedded before by the same engine.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import sqlite3
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from config import Settings
from index.errors import (
    BuildLocked, ClusterUnavailable, DiskFull, IndexCorrupt, IndexMissing, IndexUnwritable, VerbatimError,
    WouldDropDocuments,
)
from index.passages.chunk import LineIndex, chunk
from index.search.lexical import build_lexical
from index.sources import web
from index.sources.load import discover
from index.sources.sandbox import ExtractLimits, read_files
from index.storage import ann, store
from index.types import Document, Passage, Skipped
from index.words import counted




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
    """What a build did, and why."""

    documents: int
    passages: int
    sentences: int
    skipped: tuple[Skipped, ...]
    seconds: float
    generation: str
    up_to_date: bool = False
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    embedded: int = 0
    full_reason: str = ""

    def describe(self) -> str:
        """One line for people: what changed and what the build did (skipped files are listed apart)."""
        changes = (f"{self.added} added, {self.changed} changed, {self.removed} removed, "
                   f"{self.unchanged} unchanged, {sum(not item.kept for item in self.skipped)} skipped")
        if self.up_to_date:
            return f"index is already up to date ({changes}); nothing to do"
        line = (f"indexed {counted(self.documents, 'document')} ({changes}): {counted(self.passages, 'passage')}, "
                f"{counted(self.sentences, 'sentence')}, {counted(self.embedded, 'text')} embedded, in {self.seconds:.1f} s")
        return f"full rebuild ({self.full_reason}); {line}" if self.full_reason else line


@dataclass
class _Previous:
    generation: Path | None = None
    manifest: store.Manifest | None = None
    documents: dict[str, tuple[str, int]] = field(default_factory=dict)  # source -> (sha256, id)
    damaged: str | None = None  # the live generation, when it could not be read


# A build that would drop more than this share of the indexed documents (of
# at least DROP_GUARD_MIN of them), or all of them, is refused without
# allow_drop: an unmounted or emptied corpus looks exactly like that.
DROP_GUARD_SHARE = 0.5
DROP_GUARD_MIN = 5


def build_index(
    settings: Settings, progress: Progress | None = None, force: bool = False, allow_drop: bool = False,
    allow_drop_of: Collection[str] = (),
) -> BuildSummary:
    """Index the corpus into a new generation, unless the current one already matches it.

    Raises WouldDropDocuments rather than publish an index that loses all or most
    documents, unless `allow_drop` (`--allow-empty`) says that is intended; the
    documents in `allow_drop_of` (removed on purpose, e.g. by /remove) never count.
    """
    progress = progress or SilentProgress()
    started = time.perf_counter()
    # Web sources are fetched before the build lock is taken: fetching waits out
    # each site's delay, and no other build should wait on that (index/sources/web.py
    # holds a lock of its own while it fetches).
    pages, unfetched = web.refresh(settings) if web.has_sources(settings) else ([], [])
    with _build_lock(settings.index_dir), _cluster(settings) as cluster:
        store.remove_stale(settings.index_dir)
        previous = _previous(settings)
        full_reason = "--full" if force else _full_rebuild_reason(settings, previous.manifest)
        reusable = {} if full_reason else previous.documents
        documents, skipped = load_corpus(settings, reusable, previous.generation, progress, cluster)
        documents, skipped = documents + pages, skipped + unfetched  # web pages (index/sources/web.py)
        current = {d.source: d.sha256 for d in documents}
        old = {source: sha for source, (sha, _) in previous.documents.items()}
        counts = {
            "added": sum(source not in old for source in current),
            "changed": sum(source in old and old[source] != sha for source, sha in current.items()),
            "removed": sum(source not in current for source in old),
            "unchanged": sum(old.get(source) == sha for source, sha in current.items()),
        }
        if not full_reason and previous.generation and current == old:
            return BuildSummary(0, 0, 0, tuple(skipped), time.perf_counter() - started,
                                previous.generation.name, up_to_date=True, **counts)
        if not allow_drop:
            meant = sum(source in old and source not in current for source in set(allow_drop_of))
            check_drop(len(old) - meant, counts["removed"] - meant)
        with _discarded_if_unwritable(settings.index_dir):
            generation, embedded = _write_generation(settings, documents, progress, not force, cluster)
        # A damaged generation is no fallback: keep the intact one before it instead.
        store.remove_stale(settings.index_dir, damaged=previous.damaged)
    manifest = store.Manifest.read(generation)
    return BuildSummary(
        manifest.documents, manifest.passages, manifest.sentences, tuple(skipped),
        time.perf_counter() - started, generation.name, embedded=embedded,
        full_reason=full_reason if previous.generation else "", **counts,
    )


def check_drop(indexed: int, removed: int) -> None:
    """Raise WouldDropDocuments if removing `removed` of `indexed` documents looks like a lost corpus."""
    if indexed == 0 or removed == 0:
        return
    if removed == indexed or (indexed >= DROP_GUARD_MIN and removed > DROP_GUARD_SHARE * indexed):
        raise WouldDropDocuments(
            f"the corpus no longer holds {removed} of the {indexed} indexed documents; the index was left as it "
            "was (is the corpus directory empty, moved or unmounted?). If they were removed on purpose, "
            "run `verbatim index build --allow-empty`"
        )


def load_corpus(
    settings: Settings, reusable: dict[str, tuple[str, int]] | None = None, previous: Path | None = None,
    progress: Progress | None = None, cluster=None,
) -> tuple[list[Document], list[Skipped]]:
    """Every readable document of the corpus, and every file skipped with its reason.

    A file whose bytes match `reusable` (source -> sha256, id in `previous`)
    takes its text from the previous generation instead of being extracted again;
    the others are read in worker processes with limits (index/sources/sandbox.py), here or on the
    workers of `cluster` (index/cluster.py).
    """
    files, skipped = discover(settings.corpus_dir)
    progress = progress or SilentProgress()
    progress.start("reading", sum(file.size for file in files))  # in bytes: a huge PDF moves page by page
    limits = ExtractLimits.from_settings(settings)
    read: list[Document | Skipped | None] = []  # in file order, None until read
    stored = store.open_metadata(previous) if previous and reusable else None
    try:
        for file in files:
            reused = _reuse(stored, file.source, reusable or {}, file)
            if reused:
                progress.advance(file.size)
            read.append(reused)
    finally:
        if stored:
            stored.close()
    new_files = [file for file, document in zip(files, read) if document is None]
    if cluster is not None and new_files:  # with none, no cluster need be started
        fresh = iter(cluster.read_documents(new_files, limits, progress.advance))
    else:
        fresh = iter(read_files(new_files, limits, progress.advance))
    read = [document or next(fresh) for document in read]
    documents = [document for document in read if isinstance(document, Document)]
    skipped += [document for document in read if isinstance(document, Skipped)]
    return documents, skipped


def settings_changed(settings: Settings, manifest: store.Manifest) -> bool:
    """Whether an index built per `manifest` no longer fits `settings`."""
    return bool(_full_rebuild_reason(settings, manifest))


def _reuse(stored, source: str, reusable: dict[str, tuple[str, int]], file) -> Document | None:
    if stored is None or source not in reusable:
        return None
    sha, document_id = reusable[source]
    try:
        if store.file_sha256(file.path) != sha:
            return None
    except OSError:
        return None  # read_document will name the problem
    row = stored.execute(
        "SELECT kind, page_starts, text, title, bytes FROM documents WHERE id = ?", (document_id,)
    ).fetchone()
    if row is None:
        return None
    kind, page_starts, text, title, size = row
    return Document(source, text, sha, kind, tuple(int(p) for p in page_starts.split(",") if p), title, size,
                    store.document_sections(stored, document_id), file.mtime_ns)


def _previous(settings: Settings) -> _Previous:
    try:
        generation = store.current_generation(settings.index_dir)
    except (IndexMissing, IndexCorrupt):
        return _Previous()  # nothing to build on: a full build follows
    try:
        manifest = store.Manifest.read(generation)
        # Unchanged files take their text from this database: it must be intact.
        store.verify(generation, manifest, names=(store.METADATA,))
        documents = store.indexed_documents(generation)
    except (IndexCorrupt, OSError, ValueError, sqlite3.Error):
        return _Previous(damaged=generation.name)  # a full build follows, and replaces it
    return _Previous(generation, manifest, documents)


def _full_rebuild_reason(settings: Settings, manifest: store.Manifest | None) -> str:
    if manifest is None:
        return ""
    if manifest.format_version != store.FORMAT_VERSION:
        return f"index format {manifest.format_version} -> {store.FORMAT_VERSION}"
    if manifest.model != settings.model:
        return f"model changed: {manifest.model} -> {settings.model}"
    from index.embedding.engine import model_checksum

    checksum = model_checksum(settings.model)
    # An index from before checksums were recorded is trusted on the model's name.
    if manifest.model_sha256 and manifest.model_sha256 != checksum:
        return f"model's files changed: sha256 {manifest.model_sha256[:12]} -> {checksum[:12]}"
    if (manifest.passage_max_chars, manifest.passage_min_chars) != (settings.passage_max_chars, settings.passage_min_chars):
        return "chunking settings changed"
    if _engine_changed(settings, manifest):
        return f"embedding engine changed: {manifest.engine} -> {settings.embedding_engine}"
    wanted = ann.choose_index_type(settings, manifest.passages).kind
    if wanted != ann.kind_of(manifest.faiss_type):
        return f"index type changed: {ann.kind_of(manifest.faiss_type)} -> {wanted}"
    return ""


def _engine_changed(settings: Settings, manifest: store.Manifest) -> bool:
    from index.embedding.engine import wanted_engine

    if settings.embedding_engine == "sentence-transformers":
        return manifest.engine != "sentence-transformers"
    wanted = wanted_engine(settings)
    # "auto" accepts an index whose model was tried and could not be exported.
    unexportable = settings.embedding_engine == "auto" and manifest.engine_note.startswith("no ONNX export")
    return manifest.engine != wanted and not unexportable


def sentence_in_context(title: str, sentence: str) -> str:
    """What a sentence's vector is embedded from: its document's title, then the sentence. A sentence
    rarely names the topic its document is about ("The main factory is in Leipzig." in "Porsche");
    with the title it is found for questions that do (measured: bench/late_chunking.py). The quote
    shown is still the sentence alone, exactly as the document has it."""
    return f"{title}: {sentence}" if title else sentence


def _write_generation(
    settings: Settings, documents: list[Document], progress: Progress, use_cache: bool, cluster=None
) -> tuple[Path, int]:
    from index.embedding.cache import EmbeddingCache
    from index.embedding.engine import build_engine, engine_key, model_checksum

    # Counted in characters, so one huge document shows progress too.
    progress.start("chunking", sum(len(d.text) for d in documents))
    passages_by_document = [
        chunk(d, settings.passage_max_chars, settings.passage_min_chars, progress.advance) for d in documents
    ]
    passage_texts = [d.text[p.start : p.end] for d, ps in zip(documents, passages_by_document) for p in ps]
    sentence_texts = [
        sentence_in_context(d.title, d.text[s.start : s.end])
        for d, ps in zip(documents, passages_by_document) for p in ps for s in p.sentences
    ]
    directory = store.new_build_directory(settings.index_dir)
    engine = build_engine(settings, directory)
    if cluster is not None and not engine.name.startswith("onnx"):
        raise ClusterUnavailable(f"a cluster build embeds with the ONNX export, and this model has none "
                                 f"({engine.note}); build without --cluster")
    cache = EmbeddingCache(settings.embedding_cache_path, engine_key(settings, engine.name),
                           engine.embedder.dimension)
    try:
        texts = passage_texts + sentence_texts
        if use_cache:
            vectors, missing = cache.lookup(texts)
        else:
            vectors, missing = np.zeros((len(texts), engine.embedder.dimension), dtype=np.float32), list(range(len(texts)))
        # A one-sentence passage is the same text twice: embed each text once.
        unique = list(dict.fromkeys(texts[i] for i in missing))
        progress.start("embedding", len(unique))
        if unique:
            if cluster is not None:
                fresh = cluster.embed(directory, settings.embed_batch_chars, unique, progress.advance)
            else:
                fresh = engine.embedder.embed(unique, progress.advance)
            row_of = {text: row for row, text in enumerate(unique)}
            vectors[missing] = fresh[[row_of[texts[i]] for i in missing]]
            cache.store(unique, fresh)
        cache.prune()
    finally:
        cache.close()
    passage_vectors, sentence_vectors = vectors[: len(passage_texts)], vectors[len(passage_texts) :]

    connection = store.create_metadata(directory)
    with connection:
        _insert_metadata(connection, documents, passages_by_document)
    connection.close()
    choice = ann.choose_index_type(settings, len(passage_texts))
    sentence_codec = ""
    if choice.kind == ann.IVFPQ:
        faiss_type = ann.write_ivfpq(directory, passage_vectors, settings)
        sentence_codec = ann.write_sentence_codes(
            directory, [sentence_vectors], ann.training_sample(sentence_vectors, 1), len(sentence_vectors), settings)
    else:
        faiss_type = store.write_vectors(directory, passage_vectors, settings, exact=choice.kind == ann.FLAT)
        np.save(directory / store.SENTENCE_VECTORS, sentence_vectors.astype(np.float16), allow_pickle=False)
    build_lexical(passage_texts).save(directory)
    manifest = store.Manifest(
        format_version=store.FORMAT_VERSION,
        model=settings.model,
        model_sha256=model_checksum(settings.model),
        dimension=engine.embedder.dimension,
        passage_max_chars=settings.passage_max_chars,
        passage_min_chars=settings.passage_min_chars,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        documents=len(documents),
        passages=len(passage_texts),
        sentences=len(sentence_texts),
        faiss_type=faiss_type,
        engine=engine.name,
        engine_note=engine.note,
        index_reason=choice.reason,
        sentence_codec=sentence_codec,
    )
    return store.publish(directory, manifest), len(unique)


def _insert_metadata(connection, documents: list[Document], passages_by_document: list[list[Passage]]) -> None:
    indexed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    passage_id = sentence_id = 0
    for document_id, (document, passages) in enumerate(zip(documents, passages_by_document)):
        connection.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (document_id, document.source, document.sha256, document.kind, document.title, document.size_bytes,
             len(document.text),
             ",".join(map(str, document.page_starts)), indexed_at, document.text),
        )
        connection.executemany("INSERT INTO sections VALUES (?, ?, ?)",
                               [(document_id, section.start, section.path) for section in document.sections])
        connection.execute("INSERT INTO document_files VALUES (?, ?)", (document_id, document.mtime_ns))
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
def _discarded_if_unwritable(index_dir: Path) -> Iterator[None]:
    """Turn a failed write into one error naming the place that filled (or refused), after removing
    the half-written build: a full disk must not stay full of it. Used under the build lock, where
    every build directory is this build's or a dead one's."""
    try:
        yield
    except (OSError, sqlite3.OperationalError) as error:
        for leftover in index_dir.glob(f"{store.BUILDING_PREFIX}*"):
            shutil.rmtree(leftover, ignore_errors=True)
        if isinstance(error, sqlite3.OperationalError) and "disk is full" not in str(error):
            raise
        raise write_failure(error, index_dir, "the new index") from None


def write_failure(error: OSError | sqlite3.OperationalError, folder: Path, what: str) -> VerbatimError:
    """DiskFull or IndexUnwritable for a failed write of `what` into `folder`, naming the path written.

    A copy's error names its source first (shutil sets filename to the source, filename2 to the
    target): the place that filled is the target. A file inside a discarded build is named by `folder`.
    """
    written = getattr(error, "filename2", None) or getattr(error, "filename", None)
    path = Path(os.fsdecode(written)) if written else folder
    if store.BUILDING_PREFIX in str(path) or not written:
        path = folder
    kept = "; the index in use was left as it was" if what == "the new index" else ""
    if isinstance(error, sqlite3.OperationalError) or error.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"the disk is full at {path}: {what} could not be written{kept} "
                        "(free some space there, then try again)")
    return IndexUnwritable(f"cannot write {what} at {path}: {error.strerror or error}{kept}")


@contextmanager
def _cluster(settings: Settings) -> Iterator[object | None]:
    """The Ray cluster that reads and embeds for this build, or None to do it in this process."""
    if not settings.build_cluster:
        yield None
        return
    from index import cluster

    with cluster.connect(settings) as connected:
        yield connected


@contextmanager
def _build_lock(index_dir: Path) -> Iterator[None]:
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / "build.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildLocked(f"another build is running on {index_dir}; wait for it to finish") from None
        yield
