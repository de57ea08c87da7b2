"""How much text around its best sentences the passage reader should read: `make bench-reader-windows`.

On the reader's calibration questions (bench/training/train_reader.py; never trained on, nothing from TyDi's
test slice or SQuAD dev), the shipped reader reads the best reader_sentences sentences after the
selector alone, with 1 or 2 sentences of their passage either side, or their whole passages; for
each, how often the best sentence (selector, then reader, at the shipped weight and at the best) holds the
answer, the out-of-corpus refusals fitted on it, and the reader's time per question. Writes
bench/results/reader-windows.json. Chose bot/answering/reader.py's CONTEXT_SENTENCES.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: its shared common.py
from common import require_data, write_json_results  # noqa: E402  (also puts the project on sys.path)

from calibrate_selector import calibration_sets  # noqa: E402
from fit_ranker import fit_refusal_on  # noqa: E402
from train_reader import WEIGHTS, measured_rows, read_windows, reader_evidence, top_hit  # noqa: E402

from bot.answering.reader import Reader, windows  # noqa: E402
from bot.answering.selector import Selector  # noqa: E402
from config import load_settings  # noqa: E402

# Sentences either side; WHOLE reaches past any passage's edges: the whole passage.
WHOLE = 10_000
CONTEXTS = {"sentence alone": 0, "1 either side": 1, "2 either side": 2, "whole passage": WHOLE}


def main() -> int:
    require_data("tydiqa-en-train.json", "squad2-train-10.json")
    settings = load_settings()
    reader, selector, sentences = Reader(), Selector(), settings.reader_sentences
    seconds = {name: 0.0 for name in CONTEXTS}

    def reads(reader: Reader, question: str, hits: list, best: np.ndarray) -> dict:
        found = {}
        for name, context in CONTEXTS.items():
            started = time.perf_counter()
            found[name] = read_windows(reader, question, hits, windows(hits, best[:sentences].tolist(), context))
            seconds[name] += time.perf_counter() - started
        return found

    sets = calibration_sets(lambda collected, ranker, keep: measured_rows(collected, ranker, reader, selector, keep, reads))
    questions = sum(map(len, sets.values()))
    report: dict = {"sentences_read": sentences, "shipped_weight": reader.calibration.logit_weight,
                    "questions": {name: len(rows) for name, rows in sets.items()}}
    for name in CONTEXTS:
        cut = {set_name: [row | {"read": row["reads"][name]} for row in rows] for set_name, rows in sets.items()}
        by_weight = {str(w): round(top_hit(cut["tydi"], w, selector), 4) for w in WEIGHTS if w < 100}
        best_weight = float(max(by_weight, key=by_weight.get))
        weight = reader.calibration.logit_weight
        refusal = fit_refusal_on({set_name: (np.array([reader_evidence(row, weight, selector) for row in rows]),
                                             np.array([float(row["in_corpus"]) for row in rows])) for set_name, rows in cut.items()})
        report[name] = {
            "reader_ms_per_question": round(1000 * seconds[name] / questions, 1),
            "tydi_top_hit": round(top_hit(cut["tydi"], weight, selector), 4),
            "squad_top_hit": round(top_hit(cut["squad"], weight, selector), 4),
            "tydi_top_hit_best_weight": {"weight": best_weight, "top_hit": by_weight[str(best_weight)]},
            "refusal": refusal["calibration"],
        }
    write_json_results("reader-windows.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
