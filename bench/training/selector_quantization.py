"""What quantizing the answer selector to int8 costs: `make bench-selector-quantization`.

The selector's fp32 export (kept by `make train-selector` or `make export-selector`, bench/training/train_selector.py:
fp32_export) is quantized two ways, one int8 scale per weight matrix or one per output channel, and each of the
three is calibrated as `make calibrate-selector` does, on the same questions (never trained on; nothing from
TyDi's test slice or SQuAD dev): how many sentences it reads and how its logit weighs, how often the best
sentence then holds the answer, the out-of-corpus refusals fitted on them, size, and the seconds the calibration
sets took to score (the first variant's also search them, unless `make fit-ranker` cached that). Only an int8 model fits the 25 MB an artifact may take. Writes
bench/results/selector-quantization.json. Chose bench/training/train_selector.py's PER_CHANNEL.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: its shared common.py
from common import write_json_results  # noqa: E402  (also puts the project on sys.path)

from calibrate_selector import calibration_sets, fitted, scored  # noqa: E402
from train_selector import WORK, fp32_to_measure, variant_model  # noqa: E402

from bot.answering.selector import FILES, MODEL_DIR, Selector  # noqa: E402

VARIANTS = {"fp32": None, "int8, one scale per matrix": False, "int8, one scale per channel": True}


def variant_selector(fp32, number: int, per_channel: bool | None) -> Selector:
    """An uncalibrated Selector of `fp32` quantized as `per_channel` says (None: not at all), in var/selector/quantization/<number>."""
    directory = WORK / "quantization" / str(number)
    variant_model(fp32, per_channel, MODEL_DIR, FILES, directory)
    return Selector(directory, calibrated=False)


def main() -> int:
    fp32 = fp32_to_measure(MODEL_DIR, "selector", "`make train-selector` (or `make export-selector`)")
    if fp32 is None:
        return 0
    report: dict = {}
    for number, (name, per_channel) in enumerate(VARIANTS.items()):
        selector = variant_selector(fp32, number, per_channel)
        started = time.perf_counter()
        sets = calibration_sets(lambda collected, ranker, keep: scored(collected, ranker, selector, keep))
        # Searching is cached after the first variant, so this is mostly the selector's reading (of READ sentences).
        seconds = time.perf_counter() - started
        grid, chosen, _evidence, refusal = fitted(sets)
        report.setdefault("questions", {set_name: len(rows) for set_name, rows in sets.items()})
        report[name] = {
            "megabytes": round((WORK / "quantization" / str(number) / "model.onnx").stat().st_size / 1e6, 1),
            "seconds_scoring_calibration_sets": round(seconds, 1),
            "chosen": chosen, "min_probability": refusal["min_probability"], "refusal": refusal["calibration"],
            "top_hit_reading_3_by_weight": {str(row["logit_weight"]): row["tydi_top_hit"] for row in grid if row["candidates"] == 3},
        }
        print(name, report[name]["chosen"], file=sys.stderr)
    write_json_results("selector-quantization.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
