"""Passage-vector search at scale: build, memory, search latency, recall@10 against exact search.

Vectors are mixed from real all-MiniLM-L6-v2 embeddings (or clustered noise)
and normalized; queries are real SQuAD questions. They are generated in chunks
and written through the product's own index writers (an IVF-PQ index past
ann_threshold_passages, streamed: trained on a sample, then added chunk by
chunk, never holding all vectors), then searched as the product searches them
(memory-mapped, shortlist re-scored exactly) in a fresh process whose peak RSS
is measured. Writes bench/results/scale-<N>.json.  Usage: make bench-scale [N=1000000]
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import Stopwatch, machine, percentile, write_results

DIMENSION, QUERIES, K = 384, 300, 10
DATA_KINDS = {
    "real-mix": "each a mix of two real all-MiniLM-L6-v2 embeddings of SQuAD passages and sentences plus a little noise; "
                "queries are real SQuAD questions",
    "clusters": "2,000 Gaussian clusters, noise 1.5x the centre scale (close to uniform: a worst case); "
                "queries are perturbed corpus vectors",
}


CHUNK = 100_000


class RealMix:
    """Vectors mixed from real MiniLM passage and sentence embeddings (their geometry, not noise's);
    real SQuAD questions as queries. Rows are made chunk by chunk, each chunk from its own seed."""

    def __init__(self) -> None:
        from common import CACHE, require_data
        from bot.cli.evaluation import write_eval_corpus, load_eval_set
        from config import load_settings
        from index.build import build_index
        from index.embedding.embed import OnnxEmbedder
        from index.storage import store

        qa_path, distractor_path = require_data("squad2-dev-a.json", "squad2-distractors.json")
        squad, distractors = load_eval_set(qa_path), load_eval_set(distractor_path)
        work = Path(tempfile.mkdtemp())
        write_eval_corpus(work / "corpus", squad, [distractors], set())
        settings = load_settings(corpus_dir=work / "corpus", index_dir=work / "index", cache_dir=CACHE)
        build_index(settings)
        generation = store.current_generation(settings.index_dir)
        self.anchors = np.concatenate([np.load(generation / store.PASSAGE_VECTORS_NPY),
                                       np.load(generation / store.SENTENCE_VECTORS)]).astype(np.float32)
        questions = [q.question for q in squad.questions[:: max(1, len(squad.questions) // QUERIES)]][:QUERIES]
        self.queries = OnnxEmbedder(generation).embed(questions)

    def rows(self, start: int, end: int) -> np.ndarray:
        rng = np.random.default_rng([0, start])
        first, second = rng.integers(0, len(self.anchors), (2, end - start))
        weight = rng.uniform(0.1, 0.6, (end - start, 1)).astype(np.float32)
        vectors = self.anchors[first] + weight * self.anchors[second]
        vectors += 0.05 * rng.standard_normal((end - start, DIMENSION), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class Clusters:
    """2,000 Gaussian clusters with noise 1.5x their scale (close to uniform: a worst case);
    queries are perturbed rows of the first chunk."""

    def __init__(self) -> None:
        self.centres = np.random.default_rng(0).standard_normal((2000, DIMENSION), dtype=np.float32)
        rng = np.random.default_rng(1)
        first = self.rows(0, CHUNK)
        queries = first[rng.choice(len(first), QUERIES, replace=False)]
        queries += 0.02 * rng.standard_normal((QUERIES, DIMENSION), dtype=np.float32)
        self.queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)

    def rows(self, start: int, end: int) -> np.ndarray:
        rng = np.random.default_rng([1, start])
        labels = rng.integers(0, len(self.centres), end - start)
        vectors = self.centres[labels] + 1.5 * rng.standard_normal((end - start, DIMENSION), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class Cumulative:
    """A stopwatch that adds up every interval it times."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __enter__(self):
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds += time.perf_counter() - self._started


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def search_child(directory: str) -> None:
    """In a fresh process: open the index as the product does, measure memory and latency."""
    import faiss

    from config import load_settings
    from index.storage import ann, store

    manifest = json.loads((Path(directory) / "bench.json").read_text())
    settings = load_settings()
    before = _status_mb("VmRSS")
    with Stopwatch() as load:
        index = store.read_vectors(Path(directory), settings.faiss_nprobe)
        vectors = ann.RowReader(Path(directory) / store.PASSAGE_VECTORS_NPY)
    queries = np.load(Path(directory) / "queries.npy")
    truth = np.load(Path(directory) / "truth.npy")
    faiss.omp_set_num_threads(1)  # one query at a time, as a question is answered
    rows = []
    plan = [(settings.ann_rescore_factor, [8, 16, 32, 64, 128]), (10, [32]), (0, [32])]  # (rescore factor, nprobes)
    for factor, nprobes in plan if manifest["kind"] == ann.IVFPQ else [(0, [32, 128])]:
        for nprobe in nprobes if hasattr(index, "nprobe") else [0]:
            if nprobe:
                index.nprobe = nprobe
            searcher = ann.RescoredIndex(index, vectors, factor)
            latencies, recalls = [], []
            for query, expected in zip(queries, truth):
                started = time.perf_counter()
                _, ids = searcher.search(query.reshape(1, -1), K)
                latencies.append((time.perf_counter() - started) * 1000)
                recalls.append(len(set(ids[0]) & set(expected)) / K)
            rows.append({"nprobe": nprobe, "rescore_factor": factor, "p50_ms": percentile(latencies, 50),
                         "p95_ms": percentile(latencies, 95), "recall_at_10": float(np.mean(recalls))})
    # VmHWM: this process's peak resident memory (a fresh exec starts its own count);
    # memory-mapped pages count once searches touch them.
    print(json.dumps({"load_s": load.seconds, "rss_before_load_mb": before, "rss_after_mb": _status_mb("VmRSS"),
                      "peak_rss_mb": _status_mb("VmHWM"), "rows": rows}))


def main(count: int, data: str) -> None:
    import faiss

    from config import load_settings
    from index.storage import ann, store

    settings = load_settings()
    choice = ann.choose_index_type(settings, count)
    with tempfile.TemporaryDirectory(dir=str(Path(__file__).resolve().parents[1] / "var")) as scratch:
        directory = Path(scratch)
        generate, exact, add = Cumulative(), Cumulative(), Cumulative()
        with generate:
            source = RealMix() if data == "real-mix" else Clusters()
        queries = np.ascontiguousarray(source.queries, dtype=np.float32)
        best_scores = np.full((len(queries), K), -np.inf, dtype=np.float32)
        best_ids = np.zeros((len(queries), K), dtype=np.int64)
        kept = []  # only for the in-memory index types (flat, ivf), below the IVF-PQ threshold
        with Stopwatch() as train:
            if choice.kind == ann.IVFPQ:
                sample_size = min(count, max(ann.TRAIN_PER_LIST * ann.nlist_for(settings, count), 10_000))
                # Rows are independent draws, so the first ones are a random sample.
                writer = ann.IvfPqWriter(directory, source.rows(0, sample_size), count, settings)
        for start in range(0, count, CHUNK):
            end = min(count, start + CHUNK)
            with generate:
                vectors = source.rows(start, end)
            with exact:  # exact top-10 over everything so far, merged chunk by chunk
                scores = queries @ vectors.T
                merged_scores = np.concatenate([best_scores, scores], axis=1)
                merged_ids = np.concatenate([best_ids, np.arange(start, end)[None, :].repeat(len(queries), 0)], axis=1)
                top = np.argpartition(-merged_scores, K - 1, axis=1)[:, :K]
                best_scores = np.take_along_axis(merged_scores, top, axis=1)
                best_ids = np.take_along_axis(merged_ids, top, axis=1)
            with add:
                if choice.kind == ann.IVFPQ:
                    writer.add(vectors)
                else:
                    kept.append(vectors)
            print(f"\r{end:,} / {count:,} added", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        with Stopwatch() as close:
            if choice.kind == ann.IVFPQ:
                kind = writer.close()
                del writer
            else:
                kind = store.write_vectors(directory, np.concatenate(kept), settings, exact=choice.kind == ann.FLAT)
                del kept
        np.save(directory / "queries.npy", queries)
        np.save(directory / "truth.npy", best_ids)
        (directory / "bench.json").write_text(json.dumps({"kind": choice.kind}))
        sizes = {name: (directory / name).stat().st_size for name in (store.PASSAGE_VECTORS, store.PASSAGE_VECTORS_NPY)}
        child = subprocess.run([sys.executable, __file__, "--search", str(directory)], capture_output=True, text=True)
        if child.returncode:
            sys.exit(f"the search process failed: {child.stderr.strip()}")
        searched = json.loads(child.stdout.strip().splitlines()[-1])
    result = {
        "measured": f"`make bench-scale N={count}` on {machine()}, {time.strftime('%Y-%m-%d')}",
        "passages": count,
        "data": DATA_KINDS[data],
        "queries": len(queries),
        "index": kind,
        "index_type": choice.kind,
        "why": choice.reason,
        "settings": {"faiss_nlist": ann.nlist_for(settings, count), "faiss_nprobe": settings.faiss_nprobe,
                     "ann_pq_m": settings.ann_pq_m, "ann_rescore_factor": settings.ann_rescore_factor},
        "build_s": {"train": train.seconds, "add": add.seconds, "write": close.seconds,
                    "total": train.seconds + add.seconds + close.seconds,
                    "generating_vectors_not_counted": generate.seconds, "exact_truth_not_counted": exact.seconds},
        "disk_mb": {name: size / 2**20 for name, size in sizes.items()},
        "search": searched,
    }
    write_results(f"scale-{count}.json" if data == "real-mix" else f"scale-{data}-{count}.json",
                  [json.dumps(result, indent=2)])


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    if len(sys.argv) > 2 and sys.argv[1] == "--search":
        search_child(sys.argv[2])
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000, sys.argv[2] if len(sys.argv) > 2 else "real-mix")
