"""How long first quotes are, and how often they hold the answer, by quote_neighbour_margin: `make tune-quotes`.

Measured on TyDi QA's *train* slice (the test slice, which every reported figure uses, is not
read). Each margin is one `verbatim eval` run, the settings given through the environment.
Writes bench/results/quote-margin.json.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: its shared common.py
from common import DATA, RESULTS, ROOT, require_data  # noqa: E402

MARGINS = (1.0, 2.0, 3.0, 4.0, 6.0, math.inf)


def measure(margin: float) -> dict:
    environment = os.environ | {"VERBATIM_QUOTE_NEIGHBOUR_MARGIN": "1e9" if math.isinf(margin) else str(margin)}
    command = [sys.executable, "-m", "bot.cli", "eval", str(DATA / "tydiqa-en-train.json"), "--slice", "train",
               "--holdout-articles", "80", "--json"]
    report = json.loads(subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True,
                                       check=True).stdout)
    return {"quote_neighbour_margin": "none" if math.isinf(margin) else margin,
            **{key: report[key] for key in ("quote_hit_at_1", "quote_hit_at_3", "mean_first_quote_chars")}}


def main() -> int:
    require_data("tydiqa-en-train.json")
    rows = []
    for margin in MARGINS:
        rows.append(measure(margin))
        print(json.dumps(rows[-1]), file=sys.stderr)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "quote-margin.json").write_text(json.dumps(
        {"data": "TyDi QA English train slice, 80 articles held out of the index", "runs": rows}, indent=2) + "\n",
        encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
