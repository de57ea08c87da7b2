"""Calibrate the answer selector on TyDi QA's *calib* slice (never the test slice).

`make calibrate-selector` runs this after `make train-selector`. It indexes the calib
slice less HOLDOUT articles (whose questions then have no answer in the corpus),
asks every question, and chooses:
- `retrieval_weight`: how much of retrieval's score joins the selector's logit when
  ranking sentences (the value with the best quote-hit@1);
- `coverage_weight`, `scale`, `offset`: a logistic model of "the first quote holds the
  answer" over the best quote's score and its passage's coverage of the question;
- the `min_confidence` that answers ANSWERED of the in-corpus questions, reported for
  config/defaults.toml.
It writes bot/selector/calibration.json (and refreshes the checksums) and
bench/results/selector-calibration.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.answer import Answerer  # noqa: E402
from bot.evaluation import load_eval_set, select_slice, write_eval_corpus  # noqa: E402
from bot.selector import MODEL_DIR, Calibration, write_checksum  # noqa: E402
from config import load_settings  # noqa: E402
from index.build import SilentProgress, build_index  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
HOLDOUT = 100
ANSWERED = 0.96
RETRIEVAL_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0)
COVERAGE_WEIGHTS = (0.0, 1.0, 2.0, 4.0)


def main() -> int:
    if not (DATA / "tydiqa-en-train.json").exists():
        print("shared data not found: skipping", file=sys.stderr)
        return 0
    calib = select_slice(load_eval_set(DATA / "tydiqa-en-train.json"), "calib")
    held_out = set(list(calib.articles)[-HOLDOUT:])
    with tempfile.TemporaryDirectory(prefix="verbatim-calibrate-") as scratch:
        corpus = Path(scratch) / "corpus"
        write_eval_corpus(corpus, calib, (), held_out)
        settings = load_settings(corpus_dir=corpus, index_dir=Path(scratch) / "index", cache_dir=ROOT / "var" / "cache")
        build_index(settings, SilentProgress(), force=True)
        answerer = Answerer(settings)
        questions = [(q, q.article not in held_out) for q in calib.questions]
        best = None
        for weight in RETRIEVAL_WEIGHTS:
            answerer.selector.calibration = replace(answerer.selector.calibration, retrieval_weight=weight)
            rows = [_row(answerer, q, in_corpus) for q, in_corpus in questions]
            hit = np.mean([r["hit"] for r in rows if r["in_corpus"]])
            print(f"retrieval_weight {weight}: quote-hit@1 {hit:.4f}", file=sys.stderr)
            if best is None or hit > best[0]:
                best = (hit, weight, rows)
    hit, weight, rows = best
    fitted = _fit_refusal(rows)
    calibration = Calibration(retrieval_weight=weight, **fitted["calibration"])
    (MODEL_DIR / "calibration.json").write_text(json.dumps(asdict(calibration), indent=2) + "\n", encoding="utf-8")
    write_checksum(MODEL_DIR)
    report = {
        "data": f"TyDi QA English train, calib slice: {len(calib.articles)} articles, {len(questions)} questions, "
                f"{HOLDOUT} articles held out of the index",
        "retrieval_weight": weight, "calib_quote_hit_at_1": round(float(hit), 4),
        **{k: v for k, v in fitted.items() if k != "calibration"}, "calibration": asdict(calibration),
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "selector-calibration.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


def _row(answerer: Answerer, question, in_corpus: bool) -> dict:
    # Ask with refusal off, to see every question's best quote and its evidence.
    searcher = answerer.searcher
    from bot.answer import rank, select_quotes

    hits = searcher.search(question.question)
    ranked = rank(question.question, hits, answerer.selector, searcher.document_title, answerer.settings, searcher.document_edges)
    quotes = select_quotes(ranked, hits, 1, answerer.settings.quote_max_chars, searcher.document)
    hit = bool(quotes) and any(gold in quotes[0].text for gold in question.answers)
    best = ranked[0] if ranked else None
    return {"in_corpus": in_corpus, "hit": hit and in_corpus,
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
