"""Fit how the answer selector joins the ranker: `make calibrate-selector`, after `make train-selector`.

Fitted on questions the selector never saw: TyDi QA's train fold STACK_FOLD (its candidates
scored by ranker weights fitted without it), TyDi's calib slice, and the SQuAD train articles
after the first SQUAD_ARTICLES (the ranker saw those, the selector did not). It chooses
- `selector_candidates` (how many of the ranker's best sentences the selector reads; at most
  MAX_CANDIDATES, for speed) and `logit_weight` (how its logit joins the ranker's score): the
  pair whose best sentence holds the answer most often on the TyDi questions;
- the stacked refusal: a logistic model of "the question's article is in the index" over the
  ranker's refusal probability (as log-odds) and the best read sentence's logit and its lead over the others, and
  the threshold that answers ANSWERED of every set's in-corpus questions.
Nothing here reads TyDi's test slice or SQuAD 2.0 dev, which every reported figure uses.
Writes bot/answering/models/selector/calibration.json (+ checksums), selector_min_probability and
selector_candidates into config/defaults.toml, and bench/results/selector-calibration.json.
`--context N`, `--layers N` and `--epochs N` calibrate the experiment `train_selector.py` trained with the same
flags, in its own directory and bench/results/selector-calibration-<variant>.json, and leave the defaults alone.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: its shared common.py
from common import DATA, require_data, set_defaults, write_json_results  # noqa: E402  (also puts the project on sys.path)

from fit_ranker import (  # noqa: E402
    FOLD_HOLDOUT, HOLDOUT, SQUAD_HOLDOUT, cached_hits, candidate_features, collect, fit_listwise, fit_refusal_on,
    holds_answer, merge_all, search_candidates, train_folds,
)
from train_selector import SQUAD_ARTICLES, STACK_FOLD, Variant, add_variant_arguments, pair, variant_of  # noqa: E402

from bot.answering.ranker import Ranker  # noqa: E402
from bot.answering.selector import STACK_FEATURES, Calibration, Selector, write_checksum  # noqa: E402
from bot.cli.evaluation import load_eval_set, select_slice  # noqa: E402

MAX_CANDIDATES = 4
READ = 6  # logits computed per question, so every `candidates` up to READ can be tried
LOGIT_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def scored(collected: dict, ranker: Ranker, selector: Selector, keep=lambda item: True, context: int = 0) -> list[dict]:
    """Each question's ranker scores, refusal probability and labels, with the selector's logits for
    the ranker's READ best sentences (in the ranker's order)."""
    rows = []
    for item in filter(keep, collected["questions"]):
        hits = cached_hits(item)
        judged = ranker.judge(item["question"], hits)
        read = np.argsort(-judged.scores, kind="stable")[:READ]
        logits = selector.scores(item["question"], [pair(item, hits, i, context) for i in read])
        rows.append({"scores": judged.scores, "ranker_probability": judged.probability, "read": read,
                     "logits": logits.astype(np.float64), "in_corpus": item["in_corpus"],
                     "holds": np.array(holds_answer(item, hits))})
    return rows


def best_of(row: dict, calibration: Calibration, candidates: int) -> tuple[int, int]:
    """The candidate the stack puts first (an index into the hits) and its place among the read."""
    read = row["read"][:candidates]
    logits = row["logits"][:candidates]
    scores = calibration.rescored(row["scores"], read, logits)
    place = int(np.argmax(scores[read]))
    return int(read[place]), place


def hit_rate(rows: list[dict], calibration: Calibration, candidates: int) -> float:
    """Share of in-corpus questions whose first candidate holds the answer."""
    return float(np.mean([row["holds"][best_of(row, calibration, candidates)[0]] for row in rows if row["in_corpus"]]))


def stacked_evidence(rows: list[dict], calibration: Calibration, candidates: int) -> tuple[np.ndarray, np.ndarray]:
    """What the stacked refusal reads for each question (Calibration.stack_evidence), and its in-corpus flag."""
    x = [Calibration.stack_evidence(row["ranker_probability"], row["logits"][:candidates], best_of(row, calibration, candidates)[1])
         for row in rows]
    return np.array(x), np.array([float(row["in_corpus"]) for row in rows])


def calibration_sets(score: Callable[[dict, Ranker, Callable[[dict], bool]], list[dict]]) -> dict[str, list[dict]]:
    """`score(candidates, ranker, keep)` over the questions the stacked models are calibrated on: "tydi" (train fold
    STACK_FOLD, by ranker weights fitted without it, then the calib slice) and "squad" (the train articles after the
    first SQUAD_ARTICLES). Shared by the selector's calibration and the reader's (bench/training/train_reader.py)."""
    tydi = load_eval_set(DATA / "tydiqa-en-train.json")
    folds = [search_candidates(f"tydi-train-fold{n}", part, set(list(part.articles)[-FOLD_HOLDOUT:]))
             for n, part in enumerate(train_folds(select_slice(tydi, "train")))]
    squad_set = load_eval_set(DATA / "squad2-train-10.json")
    squad = collect("squad-train", squad_set, set())
    calib = select_slice(tydi, "calib")
    held = search_candidates("tydi-calib", calib, set(list(calib.articles)[-HOLDOUT:]))
    squad_held = search_candidates("squad-train-holdout", squad_set, set(list(squad_set.articles)[-SQUAD_HOLDOUT:]))
    # The stack fold's questions are scored as test questions will be: by weights that never saw them.
    fold_weights = fit_listwise(merge_all([*(candidate_features(f) for n, f in enumerate(folds) if n != STACK_FOLD), squad]))[0]
    ranker = Ranker.load()
    unseen = set(list(squad_set.articles)[SQUAD_ARTICLES:])
    return {
        "tydi": score(folds[STACK_FOLD], replace(ranker, weights=tuple(fold_weights)), lambda item: True)
        + score(held, ranker, lambda item: True),
        "squad": score(squad_held, ranker, lambda item: item["article"] in unseen),
    }


def fitted(sets: dict[str, list[dict]]) -> tuple[list[dict], dict, dict, dict]:
    """Every (candidates, logit_weight) pair's top-hit rates on `sets` (scored rows), the chosen pair, the stacked
    refusal's evidence at it and the refusal fitted on that (fit_refusal_on)."""
    grid = []
    for candidates, weight in itertools.product(range(1, READ + 1), LOGIT_WEIGHTS):
        calibration = Calibration(weight)
        grid.append({"candidates": candidates, "logit_weight": weight,
                     **{f"{name}_top_hit": round(hit_rate(rows, calibration, candidates), 4) for name, rows in sets.items()}})
    allowed = [row for row in grid if row["candidates"] <= MAX_CANDIDATES]
    chosen = max(allowed, key=lambda row: (row["tydi_top_hit"], -row["candidates"]))
    calibration = Calibration(chosen["logit_weight"])
    evidence = {name: stacked_evidence(rows, calibration, chosen["candidates"]) for name, rows in sets.items()}
    return grid, chosen, evidence, fit_refusal_on(evidence)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_variant_arguments(parser, "calibrate")
    variant = variant_of(parser.parse_args())
    context, directory = variant.context, variant.directory
    require_data("tydiqa-en-train.json", "squad2-train-10.json")
    selector = Selector(directory, calibrated=False, max_tokens=variant.max_tokens)
    sets = calibration_sets(lambda collected, ranker, keep: scored(collected, ranker, selector, keep, context))
    grid, chosen, evidence, refusal = fitted(sets)
    candidates = chosen["candidates"]
    calibration = Calibration(chosen["logit_weight"], tuple(round(w, 6) for w in refusal["refusal_weights"]),
                              round(refusal["refusal_bias"], 6))
    (directory / "calibration.json").write_text(json.dumps({
        "logit_weight": calibration.logit_weight,
        "refusal_features": list(STACK_FEATURES),
        "refusal_weights": list(calibration.refusal_weights), "refusal_bias": calibration.refusal_bias,
    }, indent=1) + "\n", encoding="utf-8")
    write_checksum(directory)
    if variant == Variant():
        set_defaults(selector_min_probability=refusal["min_probability"], selector_candidates=candidates)
    without = grid[0]  # one candidate read at weight 0: the ranker alone
    # The ranker's refusal logit alone, on the same sets: what the selector's logit adds.
    alone = fit_refusal_on({name: (x[:, :1], y) for name, (x, y) in evidence.items()})
    write_json_results(f"selector-calibration{variant.suffix}.json", {
        "data": f"TyDi QA train fold {STACK_FOLD} (never trained on; ranker weights fitted without it) and the "
                f"calib slice ({HOLDOUT} articles held out of the index), the SQuAD 2.0 train articles after the "
                f"first {SQUAD_ARTICLES} ({SQUAD_HOLDOUT} held out of the index)",
        "questions": {name: len(rows) for name, rows in sets.items()},
        "ranker_alone": {k: v for k, v in without.items() if k.endswith("top_hit")},
        "chosen": chosen, "min_probability": refusal["min_probability"], "refusal_calibration": refusal["calibration"],
        "refusal_calibration_ranker_alone": alone["calibration"],
        "grid": grid,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
