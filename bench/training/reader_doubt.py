"""When the passage reader should read with `reader = false`: `make tune-reader-doubt` fits reader_doubt_margin.

The reader puts the answer first more often than the selector alone (bot/answering/models/reader/MODEL_CARD.md),
but reading every question costs more time than the speed target allows. Where the selector's two best sentences
are far apart, the reader seldom changes which is first; where they are close, it often does. So it reads only
when they are within a margin: this measures, on the selector's calibration questions (TyDi train fold 3 and
the calib slice; SQuAD train articles 7-10, never what the README measures on), the share of in-corpus questions
whose first sentence holds the answer and the share of all questions read, for each margin, and keeps the
margin that puts the answer first most often on TyDi's while reading at most MAX_SHARE_READ of its questions,
so that the median question is not read. Writes bench/results/reader-doubt.json and reader_doubt_margin in
config/defaults.toml.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: its shared common.py
from common import require_data, set_defaults, write_json_results  # noqa: E402  (also puts the project on sys.path)

from calibrate_selector import calibration_sets  # noqa: E402
from train_reader import lifted, measured_rows, reading_first  # noqa: E402

from bot.answering.answer import doubtful  # noqa: E402
from bot.answering.ranker import Judgement  # noqa: E402
from bot.answering.reader import Reader  # noqa: E402
from bot.answering.selector import Selector  # noqa: E402
from config import load_settings  # noqa: E402

MARGINS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 1e9)
# Read at most this share of questions: more, and the median question (the p50 the speed target is on) is read.
MAX_SHARE_READ = 0.4


def torn(row: dict, selector: Selector, margin: float) -> bool:
    """Whether answering would read this question: its order after the selector, judged as answering judges it."""
    return doubtful(Judgement(lifted(row, 0.0, selector), 0.0), margin)


def at_margin(rows: list[dict], selector: Selector, weight: float, margin: float) -> dict:
    """The share of in-corpus questions whose first sentence holds the answer, and of all questions read."""
    read = [torn(row, selector, margin) for row in rows]
    firsts = [int(np.argmax(lifted(row, weight if doubt else 0.0, selector))) for row, doubt in zip(rows, read)]
    hits = [row["holds"][first] for row, first in zip(rows, firsts) if row["in_corpus"]]
    return {"margin": margin, "top_hit": round(float(np.mean(hits)), 4), "share_read": round(float(np.mean(read)), 4)}


def main() -> int:
    require_data("tydiqa-en-train.json", "squad2-train-10.json")
    started = time.perf_counter()
    reader, selector = Reader(), Selector()
    sentences = load_settings().reader_sentences
    sets = calibration_sets(lambda collected, ranker, keep: [
        reading_first(row, sentences) for row in measured_rows(collected, ranker, reader, selector, keep)])
    weight = reader.calibration.logit_weight
    grid = {name: [at_margin(rows, selector, weight, margin) for margin in MARGINS] for name, rows in sets.items()}
    allowed = [row for row in grid["tydi"] if row["share_read"] <= MAX_SHARE_READ]
    chosen = max(allowed, key=lambda row: (row["top_hit"], -row["share_read"]))["margin"]
    set_defaults(reader_doubt_margin=chosen)
    write_json_results("reader-doubt.json", {
        "data": "the selector's calibration questions (bench/training/calibrate_selector.py: calibration_sets)",
        "questions": {name: len(rows) for name, rows in sets.items()}, "reader_sentences": sentences,
        "reader_weight": weight, "max_share_read": MAX_SHARE_READ, "chosen_margin": chosen, "grid": grid,
        "seconds": round(time.perf_counter() - started)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
