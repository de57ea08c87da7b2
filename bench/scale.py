"""1,000,000 synthetic 384-dimension passages: build, memory, search latency, recall@10.

Vectors are clustered (like real embeddings, unlike uniform noise) and
normalized; queries are perturbed corpus vectors. The index is written and
loaded by the product's own store functions, then searched in a fresh process.
Writes bench/results/scale.md.  Usage: make bench-scale [N=1000000]
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


def from_real_embeddings(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Vectors mixed from real MiniLM passage and sentence embeddings (their geometry, not noise's),
    and real SQuAD questions as queries."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from common import CACHE, require_data
    from bot.evaluation import write_eval_corpus, load_eval_set
    from config import load_settings
    from index import store
    from index.build import build_index
    from index.embed import OnnxEmbedder

    qa_path, distractor_path = require_data("squad2-dev-a.json", "squad2-distractors.json")
    squad, distractors = load_eval_set(qa_path), load_eval_set(distractor_path)
    work = Path(tempfile.mkdtemp())
    write_eval_corpus(work / "corpus", squad, [distractors], set())
    settings = load_settings(corpus_dir=work / "corpus", index_dir=work / "index", cache_dir=CACHE)
    build_index(settings)
    generation = store.current_generation(settings.index_dir)
    anchors = np.concatenate([np.load(generation / store.PASSAGE_VECTORS_NPY), np.load(generation / store.SENTENCE_VECTORS)]).astype(np.float32)
    rng = np.random.default_rng(seed)
    vectors = np.empty((count, anchors.shape[1]), dtype=np.float32)
    for start in range(0, count, 100_000):
        end = min(count, start + 100_000)
        first, second = rng.integers(0, len(anchors), (2, end - start))
        weight = rng.uniform(0.1, 0.6, (end - start, 1)).astype(np.float32)
        vectors[start:end] = anchors[first] + weight * anchors[second] + 0.05 * rng.standard_normal((end - start, anchors.shape[1]), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    questions = [q.question for q in squad.questions[:: max(1, len(squad.questions) // QUERIES)]][:QUERIES]
    queries = OnnxEmbedder(generation).embed(questions)
    return vectors, queries


def synthetic(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2000, DIMENSION), dtype=np.float32)
    vectors = np.empty((count, DIMENSION), dtype=np.float32)
    for start in range(0, count, 100_000):
        end = min(count, start + 100_000)
        labels = rng.integers(0, len(centres), end - start)
        vectors[start:end] = centres[labels] + 1.5 * rng.standard_normal((end - start, DIMENSION), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def search_child(directory: str, nprobes: list[int]) -> None:
    """In a fresh process: load the index as the product does, measure memory and latency."""
    import faiss

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from index import store

    before = _rss_mb()
    with Stopwatch() as load:
        index = store.read_vectors(Path(directory), nprobes[0])
    queries = np.load(Path(directory) / "queries.npy")
    truth = np.load(Path(directory) / "truth.npy")
    faiss.omp_set_num_threads(1)  # one query at a time, as a question is answered
    rows = []
    for nprobe in nprobes:
        index.nprobe = nprobe
        latencies, recalls = [], []
        for query, expected in zip(queries, truth):
            started = time.perf_counter()
            _, ids = index.search(query.reshape(1, -1), K)
            latencies.append((time.perf_counter() - started) * 1000)
            recalls.append(len(set(ids[0]) & set(expected)) / K)
        rows.append({"nprobe": nprobe, "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
                     "recall": float(np.mean(recalls))})
    peak_mb = _rss_mb()
    # Memory-mapped pages count once searches touch them. (ru_maxrss would be
    # wrong here: a spawned child inherits its parent's high-water mark.)
    index_mb = peak_mb - before
    print(json.dumps({"load_s": load.seconds, "loaded_mb": index_mb, "peak_mb": peak_mb, "rows": rows}))


def main(count: int, data: str) -> None:
    import faiss

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from config import load_settings
    from index import store

    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        with Stopwatch() as generate:
            if data == "real-mix":
                vectors, queries = from_real_embeddings(count)
            else:
                vectors = synthetic(count)
                rng = np.random.default_rng(1)
                queries = vectors[rng.choice(count, QUERIES, replace=False)] + 0.02 * rng.standard_normal((QUERIES, DIMENSION), dtype=np.float32)
                queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        with Stopwatch() as exact:
            flat = faiss.IndexFlatIP(DIMENSION)
            flat.add(vectors)
            _, truth = flat.search(queries, K)
        del flat
        np.save(directory / "queries.npy", queries)
        np.save(directory / "truth.npy", truth)
        settings = load_settings(faiss_exact_max=0)
        with Stopwatch() as build:
            kind = store.write_vectors(directory, vectors, settings)
        del vectors
        child = subprocess.run([sys.executable, __file__, "--search", str(directory)], capture_output=True, text=True, check=True)
        result = json.loads(child.stdout.strip().splitlines()[-1])
    lines = [
        f"Measured by `make bench-scale` on {machine()}, {time.strftime('%Y-%m-%d')}: {count:,} synthetic "
        f"{DIMENSION}-d vectors ({DATA_KINDS[data]}), {QUERIES} queries, recall@{K} against exact search.",
        "",
        f"- index: `{kind}` (IVF-Flat, inner product), built in {build.seconds:.1f} s "
        f"(training + adding; generating the vectors took {generate.seconds:.1f} s, exact ground truth {exact.seconds:.1f} s)",
        f"- loaded in a fresh process in {result['load_s']:.2f} s; index memory after all searches {result['loaded_mb']:.0f} MB "
        f"(process RSS after searches {result['peak_mb']:.0f} MB)",
        "",
        "| nprobe | search p50 ms | p95 ms | recall@10 |",
        "|---|---|---|---|",
    ] + [f"| {r['nprobe']} | {r['p50']:.2f} | {r['p95']:.2f} | {r['recall']:.3f} |" for r in result["rows"]]
    write_results(f"scale-{data}.md", lines)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--search":
        search_child(sys.argv[2], [8, 16, 32, 64, 128])
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000, sys.argv[2] if len(sys.argv) > 2 else "real-mix")
