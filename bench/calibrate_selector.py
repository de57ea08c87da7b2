"""Calibrate the answer selector on TyDi QA's *calib* slice (never the test slice).

`make calibrate-selector` runs this after `make train-selector`. It indexes the calib
slice less HOLDOUT articles (whose questions then have no answer in the corpus),
asks every question, and chooses:
- `retrieval_weight`: how much of retrieval's score joins the selector's logit when
  ranking sentences, with how many candidate sentences the selector reads and the dense
  share of passage ranking (the values with the best quote-hit@1; the last two are
  reported for config/defaults.toml and index/search.py);
- `coverage_weight`, `scale`, `offset`: a logistic model of "the first quote holds the
  answer" over the best quote's score and its passage's coverage of the question;
- the threshold that answers ANSWERED of the in-corpus questions
  (`selector_min_probability` in config/defaults.toml).
It writes bot/selector/calibration.json (and refreshes the checksums),
selector_min_probability, selector_candidates and quote_max_chars into config/defaults.toml, and
bench/results/selector-calibration.json.
"""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import asdict, replace

import numpy as np

from common import DATA, held_out_index, set_defaults, write_json_results  # (also puts the project on sys.path)

from bot.answer import Answerer, rank, select_quotes  # noqa: E402
from bot.evaluation import load_eval_set, select_slice  # noqa: E402
from bot.selector import MODEL_DIR, Calibration, write_checksum  # noqa: E402
from index.search import Weights  # noqa: E402

HOLDOUT = 100
ANSWERED = 0.96
RETRIEVAL_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0)
CANDIDATES = (8, 12)  # sentences the selector reads per question (fewer: faster)
# Dense share of the passage ranking: SQuAD-era 0.4, or more for questions that paraphrase.
PASSAGE_DENSE = (0.4, 0.7, 1.0)
QUOTE_MAX_CHARS = (380, 340, 300, 260)
FIRST_QUOTE_CHARS = 300
COVERAGE_WEIGHTS = (0.0, 1.0, 2.0, 4.0)


def main() -> int:
    if not (DATA / "tydiqa-en-train.json").exists():
        print("shared data not found: skipping", file=sys.stderr)
        return 0
    calib = select_slice(load_eval_set(DATA / "tydiqa-en-train.json"), "calib")
    held_out = set(list(calib.articles)[-HOLDOUT:])
    with held_out_index(calib, held_out, "verbatim-calibrate-", selector=True) as settings:
        questions = [(q, q.article not in held_out) for q in calib.questions]
        best, grid = None, []
        for candidates, dense in itertools.product(CANDIDATES, PASSAGE_DENSE):
            settings_k = settings.model_copy(update={"selector_candidates": candidates})
            answerer = Answerer(settings_k, Weights(passage_dense=dense))
            for weight in RETRIEVAL_WEIGHTS:
                answerer.selector.calibration = replace(answerer.selector.calibration, retrieval_weight=weight)
                rows = [_row(answerer, q, in_corpus) for q, in_corpus in questions]
                hit = float(np.mean([r["hit"] for r in rows if r["in_corpus"]]))
                grid.append({"selector_candidates": candidates, "passage_dense": dense, "retrieval_weight": weight,
                             "quote_hit_at_1": round(hit, 4)})
                print(grid[-1], file=sys.stderr)
                if best is None or hit > best[0] + 0.005:  # more candidates only when clearly better
                    best = (hit, weight, rows, candidates, dense)
        hit, weight, rows, candidates, dense = best
        # The longest quotes whose mean first quote stays within FIRST_QUOTE_CHARS.
        answerer = Answerer(settings.model_copy(update={"selector_candidates": candidates}), Weights(passage_dense=dense))
        answerer.selector.calibration = replace(answerer.selector.calibration, retrieval_weight=weight)
        lengths = []
        for quote_max_chars in QUOTE_MAX_CHARS:
            answerer.settings = answerer.settings.model_copy(update={"quote_max_chars": quote_max_chars})
            trial = [_row(answerer, q, in_corpus) for q, in_corpus in questions]
            mean_chars = float(np.mean([r["chars"] for r in trial if r["in_corpus"] and r["chars"]]))
            lengths.append({"quote_max_chars": quote_max_chars, "mean_first_quote_chars": round(mean_chars, 1),
                            "quote_hit_at_1": round(float(np.mean([r["hit"] for r in trial if r["in_corpus"]])), 4)})
            print(lengths[-1], file=sys.stderr)
            rows, hit = trial, lengths[-1]["quote_hit_at_1"]
            if mean_chars <= FIRST_QUOTE_CHARS:
                break
    fitted = _fit_refusal(rows)
    calibration = Calibration(retrieval_weight=weight, **fitted["calibration"])
    (MODEL_DIR / "calibration.json").write_text(json.dumps(asdict(calibration), indent=2) + "\n", encoding="utf-8")
    write_checksum(MODEL_DIR)
    report = {
        "data": f"TyDi QA English train, calib slice: {len(calib.articles)} articles, {len(questions)} questions, "
                f"{HOLDOUT} articles held out of the index",
        "retrieval_weight": weight, "selector_candidates": candidates, "passage_dense": dense, "calib_quote_hit_at_1": round(float(hit), 4),
        "grid": grid, "quote_lengths": lengths,
        **{k: v for k, v in fitted.items() if k != "calibration"}, "calibration": asdict(calibration),
    }
    set_defaults(selector_min_probability=report["min_confidence"], selector_candidates=candidates,
                  quote_max_chars=lengths[-1]["quote_max_chars"])
    write_json_results("selector-calibration.json", report)
    return 0


def _row(answerer: Answerer, question, in_corpus: bool) -> dict:
    # Ask with refusal off, to see every question's best quote and its evidence.
    searcher = answerer.searcher
    hits = searcher.search(question.question)
    ranked = rank(question.question, hits, answerer.selector, searcher.document_title, answerer.settings, searcher.document_edges)
    quotes = select_quotes(ranked, hits, 1, answerer.settings.quote_max_chars, searcher.document)
    hit = bool(quotes) and any(gold in quotes[0].text for gold in question.answers)
    best = ranked[0] if ranked else None
    return {"in_corpus": in_corpus, "hit": hit and in_corpus, "chars": len(quotes[0].text) if quotes else 0,
            "score": best.score if best else -20.0, "coverage": best.coverage if best else 0.0}


def _fit_refusal(rows: list[dict]) -> dict:
    """Choose the coverage weight that refuses most out-of-corpus questions at ANSWERED, then fit
    a logistic model of "the first quote answers" on that evidence."""
    in_corpus = [r for r in rows if r["in_corpus"]]
    outside = [r for r in rows if not r["in_corpus"]]
    best = None
    for coverage_weight in COVERAGE_WEIGHTS:
        evidence = lambda r: r["score"] + coverage_weight * r["coverage"]  # noqa: E731
        threshold = float(np.quantile([evidence(r) for r in in_corpus], 1 - ANSWERED))
        refused = float(np.mean([evidence(r) < threshold for r in outside]))
        print(f"coverage_weight {coverage_weight}: out-of-corpus refused {refused:.4f}", file=sys.stderr)
        if best is None or refused > best[0]:
            best = (refused, coverage_weight, threshold)
    refused, coverage_weight, threshold = best
    x = np.array([r["score"] + coverage_weight * r["coverage"] for r in rows])
    y = np.array([float(r["hit"]) for r in rows])
    scale, offset = _logistic(x, y)
    min_confidence = 1 / (1 + np.exp(-(scale * threshold + offset)))
    return {
        "calibration": {"coverage_weight": coverage_weight, "scale": round(scale, 6), "offset": round(offset, 6)},
        "calib_answered": ANSWERED, "calib_out_of_corpus_refused": round(refused, 4),
        "min_confidence": round(float(min_confidence), 4),
    }


def _logistic(x: np.ndarray, y: np.ndarray, steps: int = 5000) -> tuple[float, float]:
    """Fit p = sigmoid(a*x + b) by gradient descent on the log loss (x standardised first)."""
    mean, std = float(x.mean()), float(x.std() or 1.0)
    z = (x - mean) / std
    a, b = 1.0, 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(a * z + b)))
        a -= 0.1 * float(np.mean((p - y) * z))
        b -= 0.1 * float(np.mean(p - y))
    return a / std, b - a * mean / std


if __name__ == "__main__":
    sys.exit(main())
