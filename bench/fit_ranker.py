"""Fit the sentence ranker (bot/ranker.py): `make fit-ranker`.

Its weights are fitted on TyDi QA's *train* slice and the 10 SQuAD 2.0 train articles
(each indexed alone, every answerable question asked); its refusal model on TyDi's
*calib* slice with HOLDOUT articles left out of the index (their questions must be
refused). Nothing here reads the test slice or SQuAD dev, which every reported figure
uses. Deterministic: full-batch gradient descent from zero weights, no sampling.
Writes bot/ranker/ranker.json (+ checksum), ranker_min_probability into
config/defaults.toml, and bench/results/ranker-fit.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import CACHE, DATA, RESULTS, ROOT  # (also puts the project on sys.path)

import hashlib  # noqa: E402

from bot.answer import Answerer  # noqa: E402
from bot.evaluation import EvalSet, load_eval_set, select_slice, write_eval_corpus  # noqa: E402
from bot.ranker import FEATURES, FILES, MODEL_DIR, REFUSAL_FEATURES, features, refusal_evidence  # noqa: E402
from bot.selector import write_checksum  # noqa: E402
from calibrate_selector import _set_defaults  # noqa: E402
from config import load_settings  # noqa: E402
from index.build import SilentProgress, build_index  # noqa: E402

GROUPS = ROOT / "var" / "ranker"
HOLDOUT = 100
SQUAD_HOLDOUT = 2
ANSWERED = 0.95
L2 = 1e-2
# Collected candidates are reused while the code that makes them is unchanged.
CODE_HASH = hashlib.sha256(b"".join((ROOT / p).read_bytes() for p in ("bot/ranker.py", "index/search.py"))).hexdigest()[:12]


def collect(name: str, eval_set: EvalSet, held_out: set[str]) -> dict[str, np.ndarray]:
    """Every answerable question's candidates: features, labels (holds a gold answer), and group."""
    cached = GROUPS / f"{name}-{CODE_HASH}.npz"
    if cached.exists():
        return dict(np.load(cached, allow_pickle=False))
    with tempfile.TemporaryDirectory(prefix="verbatim-ranker-") as scratch:
        corpus = Path(scratch) / "corpus"
        write_eval_corpus(corpus, eval_set, (), held_out)
        settings = load_settings(corpus_dir=corpus, index_dir=Path(scratch) / "index", cache_dir=CACHE)
        build_index(settings, SilentProgress(), force=True)
        searcher = Answerer(settings).searcher
        xs, ys, groups, in_corpus = [], [], [], []
        for number, question in enumerate(eval_set.questions):
            if not question.answers:
                continue
            hits = searcher.search(question.question)
            if not hits:
                continue
            xs.append(features(question.question, hits))
            ys.append(np.array([any(g in hit.text for g in question.answers) for hit in hits], dtype=np.float64))
            groups.append(np.full(len(hits), number))
            in_corpus.append(np.full(len(hits), question.article not in held_out))
            if number % 200 == 0:
                print(f"{name}: {number}/{len(eval_set.questions)}", file=sys.stderr)
    data = {"x": np.concatenate(xs), "y": np.concatenate(ys), "group": np.concatenate(groups),
            "in_corpus": np.concatenate(in_corpus)}
    GROUPS.mkdir(parents=True, exist_ok=True)
    np.savez(cached, **data)
    return data


def fit_listwise(data: dict[str, np.ndarray], l2: float = 1e-3, steps: int = 3000, rate: float = 0.5):
    """Weights maximising the softmax probability of the answering candidates within each question
    (a conditional logit), on standardised features. Returns (weights, mean, std) in raw units."""
    x, y, group = data["x"], data["y"], data["group"]
    keep = _answerable_groups(y, group)
    x, y, group = x[keep], y[keep], group[keep]
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    _, index = np.unique(group, return_inverse=True)
    groups = index.max() + 1
    # Spread each question's credit over its answering candidates.
    target = y / np.bincount(index, weights=y, minlength=groups)[index]
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        s = z @ w
        s = s - np.bincount(index, weights=s, minlength=groups)[index] / np.bincount(index, minlength=groups)[index]
        e = np.exp(np.clip(s, -50, 50))
        p = e / np.bincount(index, weights=e, minlength=groups)[index]
        gradient = z.T @ (p - target) / groups + l2 * w
        w -= rate * gradient
    return w / std, mean, std


def _answerable_groups(y, group):
    index = np.unique(group, return_inverse=True)[1]
    return (np.bincount(index, weights=y) > 0)[index]


def top1(data: dict[str, np.ndarray], weights: np.ndarray, only_in_corpus: bool = True) -> float:
    """Share of (in-corpus) questions whose best-scored candidate holds the answer."""
    x, y, group = data["x"], data["y"], data["group"]
    if only_in_corpus:
        keep = data["in_corpus"].astype(bool)
        x, y, group = x[keep], y[keep], group[keep]
    scores = x @ weights
    hits = []
    for g in np.unique(group):
        members = np.flatnonzero(group == g)
        hits.append(y[members[np.argmax(scores[members])]])
    return float(np.mean(hits))


def fit_refusal(sets: dict[str, dict[str, np.ndarray]], weights: np.ndarray) -> dict:
    """A logistic model of "the question is answered in the corpus" over refusal_evidence (each set
    weighing the same in all), and the highest probability threshold that still answers ANSWERED
    of every set's in-corpus questions."""
    evidence, in_corpus, weight, which = [], [], [], []
    for name, data in sets.items():
        groups = np.unique(data["group"])
        for g in groups:
            members = data["group"] == g
            rows = data["x"][members]
            evidence.append(refusal_evidence(rows @ weights, rows))
            in_corpus.append(float(data["in_corpus"][members][0]))
            weight.append(1.0 / len(groups))
            which.append(name)
    x, y, sample, which = np.array(evidence), np.array(in_corpus), np.array(weight), np.array(which)
    sample = sample / sample.sum()
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(5000):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        w -= 0.5 * (z.T @ (sample * (p - y)) + 1e-3 * w)
        b -= 0.5 * float(np.sum(sample * (p - y)))
    raw_w, raw_b = w / std, b - float((w / std) @ mean)
    probability = 1 / (1 + np.exp(-(x @ raw_w + raw_b)))
    threshold = min(float(np.quantile(probability[(which == name) & (y == 1)], 1 - ANSWERED)) for name in sets)
    per_set = {
        name: {"questions": int((which == name).sum()), "out_of_corpus": int(((which == name) & (y == 0)).sum()),
               "answered": round(float(np.mean(probability[(which == name) & (y == 1)] >= threshold)), 4),
               "out_of_corpus_refused": round(float(np.mean(probability[(which == name) & (y == 0)] < threshold)), 4)}
        for name in sets
    }
    return {"refusal_weights": raw_w.tolist(), "refusal_bias": raw_b, "min_probability": round(threshold, 4),
            "calibration": per_set}


def merge(first: dict[str, np.ndarray], second: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Two collections as one, their question groups kept apart."""
    offset = first["group"].max() + 1
    return {k: np.concatenate([first[k], second[k] + (offset if k == "group" else 0)]) for k in first}


def main() -> int:
    if not (DATA / "tydiqa-en-train.json").is_file() or not (DATA / "squad2-train-10.json").is_file():
        print("skipped: shared data not found", file=sys.stderr)
        return 0
    tydi = load_eval_set(DATA / "tydiqa-en-train.json")
    calib = select_slice(tydi, "calib")
    train = collect("tydi-train", select_slice(tydi, "train"), set())
    squad = collect("squad-train", load_eval_set(DATA / "squad2-train-10.json"), set())
    held = collect("tydi-calib", calib, set(list(calib.articles)[-HOLDOUT:]))
    squad_set = load_eval_set(DATA / "squad2-train-10.json")
    squad_held = collect("squad-train-holdout", squad_set, set(list(squad_set.articles)[-SQUAD_HOLDOUT:]))
    weights, _, _ = fit_listwise(merge(train, squad), l2=L2, steps=4000)
    baseline = np.zeros(len(FEATURES))
    baseline[FEATURES.index("retrieval")] = 1.0
    refusal = fit_refusal({"tydi_calib": held, "squad_train": squad_held}, weights)
    MODEL_DIR.mkdir(exist_ok=True)
    (MODEL_DIR / "ranker.json").write_text(json.dumps({
        "features": FEATURES, "weights": [round(w, 6) for w in weights.tolist()],
        "refusal_features": REFUSAL_FEATURES, "refusal_weights": [round(w, 6) for w in refusal["refusal_weights"]],
        "refusal_bias": round(refusal["refusal_bias"], 6),
    }, indent=1) + "\n", encoding="utf-8")
    write_checksum(MODEL_DIR, FILES)
    _set_defaults(ranker_min_probability=refusal["min_probability"])
    report = {
        "data": "fit: TyDi QA English train slice + 10 SQuAD 2.0 train articles; refusal: TyDi calib slice, "
                f"{HOLDOUT} articles held out of the index, and the SQuAD train articles, {SQUAD_HOLDOUT} held out",
        "l2": L2,
        "top_sentence_hit": {
            name: {"retrieval": round(top1(data, baseline), 4), "ranker": round(top1(data, weights), 4)}
            for name, data in (("tydi_train", train), ("squad_train", squad), ("tydi_calib", held))
        },
        "min_probability": refusal["min_probability"], "refusal_calibration": refusal["calibration"],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ranker-fit.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
