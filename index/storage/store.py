"""The index on disk: generations of immutable files behind an atomic pointer.

    index_dir/
      CURRENT              name of the generation readers should load
      gen-<time>-<id>/     manifest.json, meta.sqlite, passages.faiss,
                           sentences.npy, bm25_*.npy, bm25_vocabulary.json
      .building-<id>/      a build in progress (removed by the next build if it died)

A build writes a whole new generation, fsyncs it, then replaces CURRENT; a
reader therefore sees the old index or the new one, never a mixture.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
import uuid
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from index.errors import IndexCorrupt, IndexMissing
from index.types import Section

# 3: navigation lines left out, sentences split across wrapped lines and at clauses; sentence indexes.
# 4: sentence vectors embedded after their document's title.
FORMAT_VERSION = 4
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
METADATA = "meta.sqlite"
PASSAGE_VECTORS = "passages.faiss"
PASSAGE_VECTORS_NPY = "passages.npy"
SENTENCE_VECTORS = "sentences.npy"
GENERATION_PREFIX = "gen-"
BUILDING_PREFIX = ".building-"

SCHEMA = """
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    chars INTEGER NOT NULL,
    page_starts TEXT NOT NULL,
    indexed_at TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE passages (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id),
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    line INTEGER NOT NULL,
    first_sentence INTEGER NOT NULL,
    sentence_count INTEGER NOT NULL
);
CREATE TABLE sentences (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id),
    passage_id INTEGER NOT NULL REFERENCES passages(id),
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    line INTEGER NOT NULL
);
-- A question reads the sentences of its best passages, and a document's first and last ones.
CREATE INDEX sentences_by_passage ON sentences(passage_id);
CREATE INDEX sentences_by_document ON sentences(document_id);
-- Where each section (heading path, EPUB chapter, slide title) of a document starts (index/sources/formats.py).
CREATE TABLE sections (
    document_id INTEGER NOT NULL REFERENCES documents(id),
    start INTEGER NOT NULL,
    path TEXT NOT NULL
);
-- Each document's file mtime when indexed (0: unknown): with documents.bytes, what an answer checks
-- its cited files by (bot/answering/freshness.py) before hashing them.
CREATE TABLE document_files (
    document_id INTEGER PRIMARY KEY REFERENCES documents(id),
    mtime_ns INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class Manifest:
    """What an index was built with, and checksums of its files."""

    format_version: int
    model: str
    dimension: int
    passage_max_chars: int
    passage_min_chars: int
    built_at: str
    documents: int
    passages: int
    sentences: int
    faiss_type: str = "flat"
    engine: str = "sentence-transformers"
    engine_note: str = ""
    # Why this passage index type was chosen (index/storage/ann.py), and how sentence
    # vectors are stored: "" float16 sentences.npy, else PQ codes ("pq96x8").
    index_reason: str = ""
    sentence_codec: str = ""
    model_sha256: str = ""  # index/embedding/engine.py: model_checksum
    checksums: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, generation: Path) -> Manifest:
        """The manifest of a generation directory."""
        try:
            data = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError) as error:
            raise IndexCorrupt(f"index manifest is unreadable ({error}); run `verbatim index build --full`") from error

    def write(self, generation: Path) -> None:
        _write_durably(generation / MANIFEST, json.dumps(asdict(self), indent=2, sort_keys=True))


def current_generation(index_dir: Path) -> Path:
    """The generation directory CURRENT points at."""
    pointer = index_dir / CURRENT
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise IndexMissing(f"no index at {index_dir}; build one with `verbatim index build`") from None
    generation = index_dir / name
    if not name.startswith(GENERATION_PREFIX) or not generation.is_dir():
        raise IndexCorrupt(f"index pointer {pointer} names a missing generation {name!r}; run `verbatim index build --full`")
    return generation


def new_build_directory(index_dir: Path) -> Path:
    """A fresh private directory to write a generation into."""
    index_dir.mkdir(parents=True, exist_ok=True)
    directory = index_dir / f"{BUILDING_PREFIX}{uuid.uuid4().hex[:12]}"
    directory.mkdir()
    return directory


def create_metadata(directory: Path) -> sqlite3.Connection:
    """An empty metadata database in a build directory."""
    connection = sqlite3.connect(directory / METADATA)
    connection.executescript(SCHEMA)
    return connection


def open_metadata(generation: Path) -> sqlite3.Connection:
    """A read-only connection to a generation's metadata, usable from any thread."""
    uri = f"file:{(generation / METADATA).as_posix()}?mode=ro&immutable=1"
    return sqlite3.connect(uri, uri=True, check_same_thread=False)


def indexed_documents(generation: Path) -> dict[str, tuple[str, int]]:
    """source -> (sha256, document id) of every document in a generation."""
    with closing(open_metadata(generation)) as connection:  # sqlite3's own `with` only commits
        rows = query_metadata(connection, generation, "SELECT id, source, sha256 FROM documents")
    return {source: (sha, document_id) for document_id, source, sha in rows}


def query_metadata(connection: sqlite3.Connection, generation: Path, sql: str, parameters: tuple = ()) -> list:
    """All rows of a query on a generation's metadata; a damaged database raises IndexCorrupt."""
    try:
        return connection.execute(sql, parameters).fetchall()
    except sqlite3.DatabaseError as error:
        raise IndexCorrupt(
            f"index metadata {generation / METADATA} is damaged ({error}); run `verbatim index build --full`"
        ) from None


def document_sections(connection: sqlite3.Connection, document_id: int) -> tuple[Section, ...]:
    """A document's sections in order (none in an index built before sections were stored)."""
    try:
        rows = connection.execute(
            "SELECT start, path FROM sections WHERE document_id = ? ORDER BY start, rowid", (document_id,)
        ).fetchall()
    except sqlite3.OperationalError:
        return ()
    return tuple(Section(start, path) for start, path in rows)


@dataclass(frozen=True)
class IndexedFile:
    """What a generation recorded of a document's file: its hash, kind, size and mtime (0: unknown)."""

    source: str
    sha256: str
    kind: str
    size: int
    mtime_ns: int


def indexed_file(connection: sqlite3.Connection, source: str) -> IndexedFile | None:
    """The recorded file of `source`, or None; an index built before mtimes were stored gives 0."""
    row = connection.execute("SELECT id, sha256, kind, bytes FROM documents WHERE source = ?", (source,)).fetchone()
    if row is None:
        return None
    try:
        mtime = connection.execute("SELECT mtime_ns FROM document_files WHERE document_id = ?", (row[0],)).fetchone()
    except sqlite3.OperationalError:
        mtime = None
    return IndexedFile(source, row[1], row[2], row[3], mtime[0] if mtime else 0)


def publish(build_directory: Path, manifest_without_checksums: Manifest) -> Path:
    """Checksum, fsync and rename a finished build into place, then point CURRENT at it."""
    checksums = {path.name: file_sha256(path) for path in sorted(build_directory.iterdir()) if path.name != MANIFEST}
    manifest = Manifest(**{**asdict(manifest_without_checksums), "checksums": checksums})
    manifest.write(build_directory)
    for path in build_directory.iterdir():
        _fsync_path(path)
    _fsync_path(build_directory)
    index_dir = build_directory.parent
    now = time.time_ns()
    # Names sort in build order, which remove_stale relies on.
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now / 1e9)) + f".{now % 1_000_000_000:09d}"
    generation = index_dir / f"{GENERATION_PREFIX}{stamp}-{uuid.uuid4().hex[:8]}"
    os.rename(build_directory, generation)
    _fsync_path(index_dir)
    _write_durably(index_dir / CURRENT, generation.name + "\n")
    return generation


def write_vectors(directory: Path, vectors: np.ndarray, settings, exact: bool | None = None) -> str:
    """Write passage vectors as a FAISS index, exact or IVF (chosen by size unless `exact` says),
    and as float16 .npy for rescoring; return its type."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    count, dimension = vectors.shape
    if exact if exact is not None else count <= settings.faiss_exact_max:
        index, kind = faiss.IndexFlatIP(dimension), "flat"
    else:
        # Exact search stops being fast enough: an inverted file of exact vectors,
        # whose probe count trades speed for recall (bench/scale.py).
        nlist = settings.faiss_nlist or max(1, int(count**0.5))
        quantizer = faiss.IndexFlatIP(dimension)
        index = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = vectors[np.random.default_rng(0).choice(count, min(count, 40 * nlist), replace=False)]
        index.train(sample)
        kind = f"ivf{nlist}"
    index.add(vectors)
    faiss.write_index(index, str(directory / PASSAGE_VECTORS))
    np.save(directory / PASSAGE_VECTORS_NPY, vectors.astype(np.float16), allow_pickle=False)
    return kind


def read_vectors(generation: Path, nprobe: int):
    """The FAISS index of a generation, memory-mapped where FAISS allows it."""
    import faiss

    path = str(generation / PASSAGE_VECTORS)
    try:
        index = faiss.read_index(path, faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError:
        index = faiss.read_index(path)
    if hasattr(index, "nprobe"):
        index.nprobe = nprobe
    return index


def verify(generation: Path, manifest: Manifest, names: tuple[str, ...] | None = None) -> None:
    """Raise IndexCorrupt unless every file (or each of `names`) matches its checksum in the manifest."""
    for name, expected in manifest.checksums.items():
        if names is not None and name not in names:
            continue
        path = generation / name
        try:
            actual = file_sha256(path)
        except OSError:
            raise IndexCorrupt(f"index file {path} is missing; run `verbatim index build --full`") from None
        if actual != expected:
            raise IndexCorrupt(f"index file {path} is damaged (checksum mismatch); run `verbatim index build --full`")


def remove_stale(index_dir: Path, keep: int = 2, damaged: str | None = None) -> None:
    """Delete dead builds, and every generation but CURRENT and the `keep - 1` before it (the fallbacks);
    a generation named `damaged` counts as no fallback (it is deleted unless CURRENT).

    Call it only under the build lock: a generation newer than CURRENT is then
    one a dead build renamed into place but never pointed CURRENT at.
    """
    if not index_dir.is_dir():
        return
    try:
        current = current_generation(index_dir).name
    except (IndexMissing, IndexCorrupt):
        current = None
    for leftover in index_dir.glob(f"{BUILDING_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for half_written in index_dir.glob(".*.tmp"):
        half_written.unlink(missing_ok=True)
    generations = sorted(index_dir.glob(f"{GENERATION_PREFIX}*"), key=lambda path: path.name, reverse=True)
    if current is None:
        kept = generations[:keep]  # without a pointer, the newest are the best candidates
    else:
        kept = [g for g in generations if g.name == current or (g.name < current and g.name != damaged)][:keep]
    for old in generations:
        if old not in kept:
            shutil.rmtree(old, ignore_errors=True)


def fallback_generations(index_dir: Path, damaged: str | None) -> list[Path]:
    """Generations to answer from when `damaged` (or, with None, the pointer) is unusable: newest first."""
    generations = sorted(index_dir.glob(f"{GENERATION_PREFIX}*"), key=lambda path: path.name, reverse=True)
    return [g for g in generations if g.is_dir() and (damaged is None or g.name < damaged)]


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_durably(path: Path, content: str) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with temporary.open("w", encoding="utf-8") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)
    _fsync_path(path.parent)


def _fsync_path(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
