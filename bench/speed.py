"""Speed side by side, in one run: cold `verbatim ask`, query latency, build throughput, memory.

Writes bench/results/speed.md.  Usage: make bench-speed
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import CACHE, ROOT, Stopwatch, machine, median, percentile, require_data, write_results

from bot.answering.answer import Answerer
from bot.cli.evaluation import write_eval_corpus, load_eval_set
from config import load_settings
from index.build import build_index
from index.embedding.embed import OnnxEmbedder, load_embedder
from index.embedding.engine import build_engine

QUESTION = "How many troops would Pakistan send to Gaza?"
VERBATIM = str(Path(sys.executable).with_name("verbatim"))


def cold_ask(index_dir: Path, engine: str, runs: int = 5) -> tuple[float, float]:
    """Median wall seconds and peak RSS (MB) of fresh `verbatim ask` processes."""
    env = {**os.environ, "VERBATIM_EMBEDDING_ENGINE": engine, "VERBATIM_INDEX_DIR": str(index_dir),
           "VERBATIM_CORPUS_DIR": str(ROOT / "seeds")}
    walls, peaks = [], []
    # /usr/bin/time reports the child's own peak: getrusage(RUSAGE_CHILDREN) would
    # count this large benchmark process's pages in a freshly forked child.
    timer = ["/usr/bin/time", "-f", "%M"] if Path("/usr/bin/time").exists() else []
    for _ in range(runs):
        started = time.perf_counter()
        child = subprocess.run([*timer, VERBATIM, "ask", QUESTION], env=env, capture_output=True, text=True)
        walls.append(time.perf_counter() - started)
        assert child.returncode == 0 and "3,500" in child.stdout, child.stderr
        if timer:
            peaks.append(int(child.stderr.strip().splitlines()[-1]) / 1024)
    return median(walls), max(peaks, default=float("nan"))


def throughput(texts: list[str], embedder) -> float:
    embedder.embed(texts[:8])
    with Stopwatch() as clock:
        embedder.embed(texts)
    return len(texts) / clock.seconds


def main() -> None:
    qa_path, distractor_path = require_data("squad2-dev-a.json", "squad2-distractors.json")
    squad, distractors = load_eval_set(qa_path), load_eval_set(distractor_path)
    lines = [f"Measured by `make bench-speed` on {machine()}, {time.strftime('%Y-%m-%d')}.", ""]
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        cache = CACHE
        # 1. Cold `verbatim ask` on an index of the seed article, each engine.
        rows = []
        for engine, int8 in (("auto", True), ("auto", False), ("sentence-transformers", False)):
            settings = load_settings(corpus_dir=ROOT / "seeds", index_dir=scratch / f"seed-{engine}-{int8}",
                                     cache_dir=cache, embedding_engine=engine, onnx_int8=int8)
            build_index(settings)
            os.environ["VERBATIM_ONNX_INT8"] = str(int8).lower()
            wall, peak = cold_ask(settings.index_dir, engine)
            label = "onnx int8" if engine == "auto" and int8 else "onnx fp32" if engine == "auto" else engine
            rows.append((label, wall, peak))
            print(rows[-1], flush=True)
        os.environ.pop("VERBATIM_ONNX_INT8", None)
        slowest = rows[-1][1]
        lines += ["Cold `verbatim ask \"%s\"` on the seed article's index (median of 5 fresh processes):" % QUESTION, "",
                  "| engine | wall s | × faster than sentence-transformers | peak RSS MB |", "|---|---|---|---|"]
        lines += [f"| {label} | {wall:.2f} | {slowest / wall:.1f}× | {peak:.0f} |" for label, wall, peak in rows]

        # 2. In-process query latency on squad2-dev-a + distractors, each engine.
        corpus = scratch / "squad"
        write_eval_corpus(corpus, squad, [distractors], set())
        questions = [q.question for q in squad.questions][:1000]
        lines += ["", f"In-process `answer()` latency after warm-up, {len(questions)} SQuAD questions, "
                  "squad2-dev-a + distractors (28 documents):", "",
                  "| engine | p50 ms | p95 ms | build s |", "|---|---|---|---|"]
        for engine, int8 in (("auto", True), ("auto", False), ("sentence-transformers", False)):
            settings = load_settings(corpus_dir=corpus, index_dir=scratch / f"squad-{engine}-{int8}",
                                     cache_dir=cache, embedding_engine=engine, onnx_int8=int8)
            summary = build_index(settings, force=True)  # embeds everything: no cache hits
            answerer = Answerer(settings)
            answerer.answer("warm-up")
            latencies = []
            for question in questions:
                latencies.append(answerer.answer(question).took_ms)
            label = "onnx int8" if engine == "auto" and int8 else "onnx fp32" if engine == "auto" else engine
            lines.append(f"| {label} | {percentile(latencies, 50):.2f} | {percentile(latencies, 95):.2f} | {summary.seconds:.1f} |")
            print(lines[-1], flush=True)

        # 3. Embedding throughput on passages and sentences, each engine.
        paragraphs = [p for text in squad.articles.values() for p in text.split("\n\n")][:300]
        sentences = [s for p in paragraphs for s in p.split(". ")][:1500]
        reference = load_embedder("all-MiniLM-L6-v2")
        engines = {"sentence-transformers (torch)": reference}
        for int8 in (False, True):
            directory = scratch / f"onnx-{int8}"
            directory.mkdir()
            build_engine(load_settings(cache_dir=cache, index_dir=scratch, onnx_int8=int8), directory)
            engines[f"onnx {'int8' if int8 else 'fp32'}"] = OnnxEmbedder(directory)
        lines += ["", "Embedding throughput (texts/s; batches of similar length, about 2,000 characters each):", "",
                  "| engine | passages/s (SQuAD paragraphs, 300) | sentences/s (1,500) |", "|---|---|---|"]
        base = None
        for name, embedder in engines.items():
            p, s = throughput(paragraphs, embedder), throughput(sentences, embedder)
            base = base or p
            lines.append(f"| {name} | {p:.1f} ({p / base:.2f}×) | {s:.1f} |")
            print(lines[-1], flush=True)
    lines += ["", f"Peak RSS of this benchmark process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB."]
    write_results("speed.md", lines)


if __name__ == "__main__":
    main()
