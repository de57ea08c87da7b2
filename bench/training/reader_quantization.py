"""What quantizing the passage reader to int8 costs: `make bench-reader-quantization`.

The reader's fp32 export (kept by `make train-reader`, bench/training/train_selector.py: fp32_export) is quantized
two ways, one int8 scale per weight matrix or one per output channel, and all three are measured on the
reader's calibration questions (bench/training/train_reader.py; never trained on, nothing from TyDi's test slice or
SQuAD dev): how often the best sentence holds the answer (the reader alone, and after the selector at each
weight), the out-of-corpus refusals fitted on them, size and the reader's time per question. Only an int8
model fits the 25 MB an artifact may take. Writes bench/results/reader-quantization.json. Chose
bench/training/train_reader.py's PER_CHANNEL.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: its shared common.py
from common import write_json_results  # noqa: E402  (also puts the project on sys.path)

from calibrate_selector import calibration_sets  # noqa: E402
from fit_ranker import fit_refusal_on  # noqa: E402
from train_reader import MAX_SENTENCES, WEIGHTS, WORK, measured_rows, read_windows, reader_evidence, top_hit  # noqa: E402
from train_selector import fp32_to_measure, variant_model  # noqa: E402

from bot.answering.reader import FILES, MODEL_DIR, Reader, windows  # noqa: E402
from bot.answering.selector import Selector  # noqa: E402

VARIANTS = {"fp32": None, "int8, one scale per matrix": False, "int8, one scale per channel": True}


def variant_readers(fp32) -> dict[str, Reader]:
    """One uncalibrated Reader per VARIANTS entry, each in its own directory under var/reader/quantization."""
    readers = {}
    for number, (name, per_channel) in enumerate(VARIANTS.items()):
        directory = WORK / "quantization" / str(number)
        variant_model(fp32, per_channel, MODEL_DIR, FILES, directory)
        readers[name] = Reader(directory, calibrated=False)
    return readers


def main() -> int:
    fp32 = fp32_to_measure(MODEL_DIR, "reader", "`make train-reader` (or `make export-reader`)")
    if fp32 is None:
        return 0
    readers, selector = variant_readers(fp32), Selector()
    seconds = {name: 0.0 for name in readers}

    def reads(_unused: None, question: str, hits: list, best: np.ndarray) -> dict:
        found = {}
        for name, reader in readers.items():
            started = time.perf_counter()
            found[name] = read_windows(reader, question, hits, windows(hits, best[:MAX_SENTENCES].tolist()))
            seconds[name] += time.perf_counter() - started
        return found

    # measured_rows hands `reads` no reader: it reads with every variant.
    sets = calibration_sets(lambda collected, ranker, keep: measured_rows(collected, ranker, None, selector, keep, reads))
    questions = sum(map(len, sets.values()))
    report: dict = {"sentences_read": MAX_SENTENCES, "questions": {name: len(rows) for name, rows in sets.items()}}
    for number, name in enumerate(readers):
        cut = {set_name: [row | {"read": row["reads"][name]} for row in rows] for set_name, rows in sets.items()}
        by_weight = {set_name: {str(w): round(top_hit(rows, w, selector), 4) for w in WEIGHTS} for set_name, rows in cut.items()}
        weight = max((w for w in WEIGHTS if w < 100), key=lambda w: by_weight["tydi"][str(w)])
        refusal = fit_refusal_on({set_name: (np.array([reader_evidence(row, weight, selector) for row in rows]),
                                             np.array([float(row["in_corpus"]) for row in rows])) for set_name, rows in cut.items()})
        report[name] = {
            "megabytes": round((WORK / "quantization" / str(number) / "model.onnx").stat().st_size / 1e6, 1),
            "reader_ms_per_question": round(1000 * seconds[name] / questions, 1),
            "reader_alone_top_hit": {set_name: rows["100.0"] for set_name, rows in by_weight.items()},
            "best_weight": weight,
            "top_hit_at_best_weight": {set_name: rows[str(weight)] for set_name, rows in by_weight.items()},
            "refusal_at_best_weight": refusal["calibration"],
            "top_hit_by_weight": by_weight,
        }
    write_json_results("reader-quantization.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
