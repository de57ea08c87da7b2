"""Indexes beyond RAM: passage vectors in a FAISS IVF-PQ index, sentence vectors as PQ codes.

Which passage index a build writes is chosen by size (`choose_index_type`):
exact (flat) search while it is fast, an IVF of exact vectors past
`faiss_exact_max`, and past `ann_threshold_passages` an IVF-PQ index, whose
codes are a few dozen bytes a passage and whose inverted lists FAISS
memory-maps from the file (`store.read_vectors`), so an index larger than RAM
is searched from the page cache. Its approximate shortlist is re-scored
exactly from the float16 passage vectors (a memory-mapped .npy beside it).

In an IVF-PQ generation sentence vectors are kept as product-quantizer codes
(`sentences.codes.npy`, decoded by `sentences.codec.faiss`) rather than float16:
sentence scoring decodes only the sentences of the shortlisted passages.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.storage import store

FLAT, IVF, IVFPQ = "flat", "ivf", "ivfpq"
SENTENCE_CODES = "sentences.codes.npy"
SENTENCE_CODEC = "sentences.codec.faiss"
# Vectors used to train the coarse quantizer: FAISS asks for 39-256 per list.
TRAIN_PER_LIST = 64
ADD_BATCH = 100_000


@dataclass(frozen=True)
class IndexChoice:
    """The passage index type a build writes, and why (shown by `index status`)."""

    kind: str
    reason: str


def choose_index_type(settings, passages: int) -> IndexChoice:
    """flat, ivf or ivfpq for an index of `passages` passages under these settings."""
    if settings.index_type != "auto":
        return IndexChoice(settings.index_type, f"index_type = {settings.index_type}")
    if passages >= settings.ann_threshold_passages:
        return IndexChoice(IVFPQ, f"{passages:,} passages >= ann_threshold_passages ({settings.ann_threshold_passages:,})")
    if passages > settings.faiss_exact_max:
        return IndexChoice(IVF, f"{passages:,} passages > faiss_exact_max ({settings.faiss_exact_max:,})")
    return IndexChoice(FLAT, f"{passages:,} passages <= faiss_exact_max ({settings.faiss_exact_max:,})")


def kind_of(faiss_type: str) -> str:
    """The index type (flat, ivf, ivfpq) of a manifest's faiss_type ("ivf1000", "ivfpq3162x48")."""
    for kind in (IVFPQ, IVF, FLAT):
        if faiss_type.startswith(kind):
            return kind
    return faiss_type


def nlist_for(settings, count: int) -> int:
    """Inverted lists for `count` vectors: faiss_nlist, or about sqrt(count)."""
    return max(1, min(settings.faiss_nlist or int(math.sqrt(count)), count))


class IvfPqWriter:
    """Writes an IVF-PQ passage index and its float16 vectors in batches, never holding all vectors.

    Train it on a sample first; `add` batches in passage order; `close` writes the index.
    """

    def __init__(self, directory: Path, sample: np.ndarray, total: int, settings) -> None:
        import faiss

        dimension = sample.shape[1]
        self.nlist = nlist_for(settings, total)
        self.m = _divisor_at_most(dimension, settings.ann_pq_m)
        # Fewer than 256 training vectors can't train 8-bit codes: tiny indexes get fewer bits.
        bits = max(1, min(8, int(math.log2(max(2, len(sample))))))
        self.index = faiss.index_factory(dimension, f"IVF{self.nlist},PQ{self.m}x{bits}", faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.downcast_index(faiss.extract_index_ivf(self.index))
        ivf.cp.min_points_per_centroid = 1  # a small sample is intended, not a mistake to warn about
        ivf.pq.cp.min_points_per_centroid = 1
        ivf.do_polysemous_training = False  # seconds of training for a Hamming filter never used
        self.index.train(np.ascontiguousarray(sample, dtype=np.float32))
        self._directory = directory
        self._float16 = np.lib.format.open_memmap(
            directory / store.PASSAGE_VECTORS_NPY, mode="w+", dtype=np.float16, shape=(total, dimension))
        self._added = 0

    def add(self, vectors: np.ndarray) -> None:
        """Add the next passages' unit vectors."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.index.add(vectors)
        self._float16[self._added : self._added + len(vectors)] = vectors
        self._added += len(vectors)

    def close(self) -> str:
        """Write the index file; return its faiss_type for the manifest."""
        import faiss

        self._float16.flush()
        del self._float16
        faiss.write_index(self.index, str(self._directory / store.PASSAGE_VECTORS))
        return f"{IVFPQ}{self.nlist}x{self.m}"


def training_sample(vectors: np.ndarray, nlist: int, seed: int = 0) -> np.ndarray:
    """A random sample of rows large enough to train `nlist` lists."""
    count = len(vectors)
    size = min(count, max(TRAIN_PER_LIST * nlist, 10_000))
    rows = np.sort(np.random.default_rng(seed).choice(count, size, replace=False))
    return np.asarray(vectors[rows], dtype=np.float32)


def write_ivfpq(directory: Path, vectors: np.ndarray, settings) -> str:
    """Write passage vectors (in memory or memory-mapped) as an IVF-PQ index; return its faiss_type."""
    writer = IvfPqWriter(directory, training_sample(vectors, nlist_for(settings, len(vectors))), len(vectors), settings)
    for start in range(0, len(vectors), ADD_BATCH):
        writer.add(vectors[start : start + ADD_BATCH])
    return writer.close()


def write_sentence_codes(directory: Path, batches: Iterable[np.ndarray], sample: np.ndarray, total: int, settings) -> str:
    """Encode sentence vectors as PQ codes (trained on `sample`); return the codec's name for the manifest."""
    import faiss

    dimension = sample.shape[1]
    m = _divisor_at_most(dimension, settings.ann_sentence_pq_m)
    bits = max(1, min(8, int(math.log2(max(2, len(sample))))))
    codec = faiss.index_factory(dimension, f"PQ{m}x{bits}", faiss.METRIC_INNER_PRODUCT)
    pq_index = faiss.downcast_index(codec)
    pq_index.pq.cp.min_points_per_centroid = 1
    pq_index.do_polysemous_training = False
    codec.train(np.ascontiguousarray(sample, dtype=np.float32))
    codes = np.lib.format.open_memmap(directory / SENTENCE_CODES, mode="w+", dtype=np.uint8,
                                      shape=(total, codec.sa_code_size()))
    written = 0
    for batch in batches:
        codes[written : written + len(batch)] = codec.sa_encode(np.ascontiguousarray(batch, dtype=np.float32))
        written += len(batch)
    codes.flush()
    del codes
    faiss.write_index(codec, str(directory / SENTENCE_CODEC))
    return f"pq{m}x{bits}"


class RowReader:
    """Rows of a .npy file read on demand by positioned reads: `rows[ids]` or `rows[i]`.

    Memory-mapping the file instead made every page a question touched (and the
    kernel's read-ahead around it) count as the process's memory: at 10M passages
    the whole 7.3 GB float16 file became resident. Read this way, rows live only
    in the page cache, which the kernel shares between readers and reclaims.
    """

    def __init__(self, path: Path) -> None:
        with path.open("rb") as stream:
            version = np.lib.format.read_magic(stream)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            self.shape, fortran, self.dtype = read_header(stream)
            self._offset = stream.tell()
        if fortran or len(self.shape) != 2:
            raise ValueError(f"{path} is not a C-ordered 2-d array")
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        self._descriptor = os.open(path, os.O_RDONLY)

    def __getitem__(self, rows) -> np.ndarray:
        if np.ndim(rows) == 0:
            return self[[int(rows)]][0]
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.shape[0]):
            raise IndexError(f"row out of range 0..{self.shape[0] - 1}")
        buffer = b"".join(os.pread(self._descriptor, self._row_bytes, self._offset + int(row) * self._row_bytes)
                          for row in rows)
        return np.frombuffer(buffer, dtype=self.dtype).reshape(len(rows), self.shape[1])

    def __len__(self) -> int:
        return self.shape[0]

    def __del__(self) -> None:
        descriptor = getattr(self, "_descriptor", None)
        if descriptor is not None:
            os.close(descriptor)


class SentenceCodes:
    """Sentence vectors decoded on demand from memory-mapped PQ codes: `codes[ids]` gives float32 rows."""

    def __init__(self, generation: Path) -> None:
        import faiss

        self._codec = faiss.read_index(str(generation / SENTENCE_CODEC))
        self._codes = RowReader(generation / SENTENCE_CODES)

    def __getitem__(self, rows) -> np.ndarray:
        return self._codec.sa_decode(np.ascontiguousarray(self._codes[rows]))

    def __len__(self) -> int:
        return len(self._codes)


class RescoredIndex:
    """An approximate index whose shortlist is re-scored exactly; searched like a FAISS index."""

    def __init__(self, index, vectors: np.ndarray, factor: int) -> None:
        self._index, self._vectors, self._factor = index, vectors, factor
        self.ntotal = index.ntotal

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best k (inner product, ids) per query, FAISS-style (-1 ids where fewer are found)."""
        if self._factor <= 0:
            return self._index.search(queries, k)
        _, shortlists = self._index.search(queries, k * self._factor)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        for row, (query, shortlist) in enumerate(zip(queries, shortlists)):
            found = np.sort(shortlist[shortlist >= 0])  # sorted rows read the memory map in order
            exact = np.asarray(self._vectors[found], dtype=np.float32) @ query
            best = np.argsort(-exact)[:k]
            scores[row, : len(best)], ids[row, : len(best)] = exact[best], found[best]
        return scores, ids


def open_passage_index(generation: Path, manifest, settings, passage_vectors: np.ndarray):
    """The passage index of a generation, ready to search (IVF-PQ with exact re-scoring)."""
    index = store.read_vectors(generation, settings.faiss_nprobe)
    if kind_of(manifest.faiss_type) == IVFPQ:
        return RescoredIndex(index, passage_vectors, settings.ann_rescore_factor)
    return index


def open_sentence_vectors(generation: Path, manifest):
    """A generation's sentence vectors: float16 rows, or PQ codes decoded on demand."""
    if manifest.sentence_codec:
        return SentenceCodes(generation)
    return np.load(generation / store.SENTENCE_VECTORS, mmap_mode="r", allow_pickle=False)


def _divisor_at_most(dimension: int, wanted: int) -> int:
    # PQ splits the vector into m equal parts.
    return max(m for m in range(1, min(wanted, dimension) + 1) if dimension % m == 0)
