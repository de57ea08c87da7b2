"""The distilled embedder against the bundled MiniLM, in one run: answer() latency, build throughput, cold `ask`.

Writes bench/results/embedder-speed.json.  Usage: make bench-embedder-speed
Each measurement alternates the two models, so a slower minute of the machine falls on both.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from common import CACHE, ROOT, machine, median, percentile, require_data, write_json_results
from speed import QUESTION, cold_ask

from bot.answering.answer import Answerer
from bot.cli.evaluation import load_eval_set, write_eval_corpus
from config import load_settings
from index.build import build_index
from index.embedding.embed import BUNDLED_MODEL, DISTILLED_MODEL

MODELS = (BUNDLED_MODEL, DISTILLED_MODEL)
ROUNDS = 3
QUESTIONS = 300


def main() -> int:
    qa_path, distractor_path = require_data("squad2-dev-a.json", "squad2-distractors.json")
    squad, distractors = load_eval_set(qa_path), load_eval_set(distractor_path)
    questions = [q.question for q in squad.questions][:QUESTIONS]
    measured = {model: {"cold_ask_s": [], "answer_p50_ms": [], "answer_p95_ms": [], "build_texts_per_s": []}
                for model in MODELS}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        corpus = scratch / "squad"
        write_eval_corpus(corpus, squad, [distractors], set())
        for _ in range(ROUNDS):
            for model in MODELS:
                seed = load_settings(corpus_dir=ROOT / "seeds", index_dir=scratch / f"seed-{model}", cache_dir=CACHE, model=model)
                build_index(seed)
                os.environ["VERBATIM_MODEL"] = model
                measured[model]["cold_ask_s"].append(cold_ask(seed.index_dir, "auto")[0])
                settings = load_settings(corpus_dir=corpus, index_dir=scratch / f"squad-{model}", cache_dir=CACHE, model=model)
                summary = build_index(settings, force=True)  # embeds every text: no cache lookups
                measured[model]["build_texts_per_s"].append(summary.embedded / summary.seconds)
                answerer = Answerer(settings)
                answerer.answer("warm-up")
                latencies = [answerer.answer(question).took_ms for question in questions]
                measured[model]["answer_p50_ms"].append(percentile(latencies, 50))
                measured[model]["answer_p95_ms"].append(percentile(latencies, 95))
                print(model, {name: values[-1] for name, values in measured[model].items()}, file=sys.stderr, flush=True)
    os.environ.pop("VERBATIM_MODEL", None)
    results = {model: {name: round(median(values), 3) for name, values in figures.items()}
               for model, figures in measured.items()}
    base, student = results[BUNDLED_MODEL], results[DISTILLED_MODEL]
    write_json_results("embedder-speed.json", {
        "machine": machine(), "date": time.strftime("%Y-%m-%d"), "rounds": ROUNDS,
        "measured_on": f"cold `verbatim ask \"{QUESTION}\"` on the seed article (5 processes a round); answer() on "
                       f"{len(questions)} SQuAD dev questions over squad2-dev-a + distractors, built in full; "
                       "medians over rounds",
        "models": results,
        "distilled_against_bundled": {
            "answer_p50": round(student["answer_p50_ms"] / base["answer_p50_ms"], 3),
            "build_throughput": round(student["build_texts_per_s"] / base["build_texts_per_s"], 3),
            "cold_ask": round(student["cold_ask_s"] / base["cold_ask_s"], 3)},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
