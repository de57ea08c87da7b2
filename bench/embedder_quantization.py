"""What quantizing the embedder to int8 costs: `make bench-embedder-quantization`.

The bundled all-MiniLM-L6-v2 is exported as index builds do (index/embedding/onnx_export.py) three ways: fp32, int8
with one scale per weight matrix, and int8 with one scale per output channel. Each embeds the same
PARAGRAPHS TyDi QA paragraphs (train and calib slices, never the test slice) and one question of each; the
report gives each int8 export's cosine to fp32's vectors, how often a question's own paragraph is the nearest
of them (and among the nearest 3), and the seconds each took. Writes bench/results/embedder-quantization.json.
Chose index/embedding/onnx_export.py's PER_CHANNEL.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import require_data, write_json_results  # (also puts the project on sys.path)

from bot.cli.evaluation import article_slice  # noqa: E402
from index.embedding.embed import BUNDLED_MODEL, OnnxEmbedder, load_embedder  # noqa: E402
from index.embedding.onnx_export import export  # noqa: E402

PARAGRAPHS = 600
MAX_CHARS = 1500  # about the 256 tokens MiniLM reads
SEED = 0
VARIANTS = {"fp32": (False, False), "int8, one scale per matrix": (True, False), "int8, one scale per channel": (True, True)}


def paragraphs_and_questions(path: Path) -> tuple[list[str], list[str]]:
    """PARAGRAPHS paragraphs with questions outside TyDi's test slice, drawn at random (SEED), and each one's first question."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    drawn = [(p["context"][:MAX_CHARS], p["qas"][0]["question"]) for article in data if article_slice(article["title"]) != "test"
             for p in article["paragraphs"] if p["qas"]]
    random.Random(SEED).shuffle(drawn)
    return [text for text, _ in drawn[:PARAGRAPHS]], [question for _, question in drawn[:PARAGRAPHS]]


def main() -> int:
    (tydi,) = require_data("tydiqa-en-train.json")
    paragraphs, questions = paragraphs_and_questions(tydi)
    reference = load_embedder(BUNDLED_MODEL)._model
    vectors, report = {}, {"paragraphs": len(paragraphs), "questions": len(questions)}
    with tempfile.TemporaryDirectory(prefix="verbatim-embedder-") as scratch:
        for number, (name, (quantize, per_channel)) in enumerate(VARIANTS.items()):
            directory = Path(scratch) / str(number)
            export(reference, directory, quantize=quantize, per_channel=per_channel)
            embedder = OnnxEmbedder(directory)
            started = time.perf_counter()
            vectors[name] = (np.asarray(embedder.embed(paragraphs)), np.asarray(embedder.embed(questions)))
            seconds = time.perf_counter() - started
            passages, asked = vectors[name]
            nearest = np.argsort(-(asked @ passages.T), axis=1)[:, :3]
            own = np.arange(len(questions))[:, None]
            report[name] = {"seconds": round(seconds, 1), "megabytes": round((directory / "model.onnx").stat().st_size / 1e6, 1),
                            "own_paragraph_nearest": round(float(np.mean(nearest[:, 0] == own[:, 0])), 4),
                            "own_paragraph_in_nearest_3": round(float(np.mean((nearest == own).any(axis=1))), 4)}
            if name != "fp32":
                for which, index in (("paragraphs", 0), ("questions", 1)):
                    cosine = np.sum(vectors[name][index] * vectors["fp32"][index], axis=1)
                    report[name][f"cosine_to_fp32_{which}"] = {"mean": round(float(cosine.mean()), 5),
                                                              "min": round(float(cosine.min()), 5)}
            print(name, report[name], file=sys.stderr)
    write_json_results("embedder-quantization.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
