"""Fit the sentence ranker (bot/answering/ranker.py): `make fit-ranker`.

Its weights are fitted on TyDi QA's *train* slice and the 10 SQuAD 2.0 train articles.
The train slice is indexed as FOLDS corpora about the size of the test corpus, each with
FOLD_HOLDOUT articles left out of its index (their questions must be refused). The refusal
model is fitted on the train folds' questions scored by weights fitted without that fold
(out-of-fold), on TyDi's *calib* slice (HOLDOUT articles left out) and on SQuAD train
(SQUAD_HOLDOUT articles left out). The whole train slice indexed as one corpus, four times
the test's size, shows how refusal holds as a shelf grows (measured, not fitted on).
Nothing here reads the test slice or SQuAD dev, which every reported figure uses.
Deterministic: L-BFGS and full-batch gradient descent from zero weights, no sampling.
Writes bot/answering/models/ranker/ranker.json (+ checksum), ranker_min_probability into
config/defaults.toml, and bench/results/ranker-fit.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: its shared common.py
from common import DATA, ROOT, held_out_index, require_data, set_defaults, write_json_results  # noqa: E402  (also puts the project on sys.path)

import gzip  # noqa: E402
import hashlib  # noqa: E402

from bot.answering.answer import Answerer  # noqa: E402
from bot.answering.ranker import FEATURES, FILES, MODEL_DIR, REFUSAL_FEATURES, features, refusal_evidence  # noqa: E402
from bot.answering.selector import write_checksum  # noqa: E402
from bot.cli.evaluation import EvalSet, load_eval_set, select_slice  # noqa: E402
from config import load_settings  # noqa: E402
from index.embedding.engine import model_checksum  # noqa: E402
from index.search.hybrid import Hit  # noqa: E402

GROUPS = ROOT / "var" / "ranker"
HOLDOUT = 100
SQUAD_HOLDOUT = 2
FOLDS = 4
# As many as the test corpus leaves out (`make eval`: --holdout-articles 80).
FOLD_HOLDOUT = 80
ANSWERED = 0.95
L2 = 1e-2
# Retrieval's candidates are reused while the search and build that make them, and the embedder they were
# searched with (the default model's files, by checksum), are unchanged; the ranker's features are computed
# from them afresh on each run.
CODE_HASH = hashlib.sha256(b"".join((ROOT / p).read_bytes() for p in ("index/search/hybrid.py", "index/build.py", "index/sources/load.py",
                                                                        "index/embedding/engine.py", "index/embedding/onnx_export.py"))
                           + model_checksum(load_settings().model).encode()).hexdigest()[:12]
# The text before each candidate kept, for a selector trained with context (`make try-selector-context`).
BEFORE_CHARS = 320
# What a candidate keeps of its Hit: enough to compute FEATURES again.
HIT_FIELDS = ("source", "text", "score", "passage_id", "sentence_id", "document_id", "dense", "lexical", "passage",
              "coverage", "passage_dense", "passage_lexical", "order")


def collect(name: str, eval_set: EvalSet, held_out: set[str]) -> dict[str, np.ndarray]:
    """Every answerable question's candidates: features, labels (holds a gold answer), and group."""
    return candidate_features(search_candidates(name, eval_set, held_out))


def search_candidates(name: str, eval_set: EvalSet, held_out: set[str]) -> dict:
    """The index's passage count, and each answerable question (with its article) and its retrieval
    candidates and their documents' titles: searched once and cached (gzipped JSON)."""
    cached = GROUPS / f"{name}-{CODE_HASH}-6.json.gz"
    if cached.exists():
        return json.loads(gzip.decompress(cached.read_bytes()))
    questions = []
    with held_out_index(eval_set, held_out, "verbatim-ranker-", ranker=False) as settings:
        searcher = Answerer(settings).searcher
        passages = searcher.manifest.passages
        for number, question in enumerate(eval_set.questions):
            if not question.answers:
                continue
            hits = searcher.search(question.question)
            if hits:
                questions.append({"number": number, "question": question.question, "answers": list(question.answers),
                                  "article": question.article, "in_corpus": question.article not in held_out,
                                  "hits": [[_plain(getattr(hit, field)) for field in HIT_FIELDS] for hit in hits],
                                  # What the answer selector reads beside each sentence (or may).
                                  "titles": [searcher.document_title(hit.document_id) for hit in hits],
                                  "before": [text_before(searcher, hit) for hit in hits]})
            if number % 200 == 0:
                print(f"{name}: {number}/{len(eval_set.questions)}", file=sys.stderr)
    collected = {"passages": passages, "questions": questions}
    GROUPS.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(gzip.compress(json.dumps(collected).encode("utf-8")))
    return collected


def text_before(searcher, hit: Hit) -> str:
    return searcher.document_text(hit.document_id)[max(0, hit.start - BEFORE_CHARS) : hit.start]


def _plain(value):
    return value if isinstance(value, str) else int(value) if isinstance(value, (int, np.integer)) else float(value)


def cached_hits(item: dict) -> list[Hit]:
    """A cached question's candidates as Hits: enough of each to compute FEATURES again."""
    return [Hit(start=0, end=0, line=0, **dict(zip(HIT_FIELDS, values))) for values in item["hits"]]


def holds_answer(item: dict, hits: list[Hit]) -> list[bool]:
    """Which of the candidates hold one of the question's gold answers."""
    return [any(gold in hit.text for gold in item["answers"]) for hit in hits]


def candidate_features(collected: dict, keep=lambda item: True) -> dict[str, np.ndarray]:
    """FEATURES rows of every candidate (of the questions `keep` accepts), its label (holds a gold
    answer), question group, in-corpus flag and the number of passages in its index."""
    xs, ys, groups, in_corpus, passages = [], [], [], [], []
    for item in filter(keep, collected["questions"]):
        hits = cached_hits(item)
        xs.append(features(item["question"], hits))
        ys.append(np.array(holds_answer(item, hits), dtype=np.float64))
        groups.append(np.full(len(hits), item["number"]))
        in_corpus.append(np.full(len(hits), item["in_corpus"]))
        passages.append(np.array([hit.passage_id for hit in hits]))
    y = np.concatenate(ys)
    return {"x": np.concatenate(xs), "y": y, "group": np.concatenate(groups), "in_corpus": np.concatenate(in_corpus),
            "passage": np.concatenate(passages), "passages": np.full(len(y), collected["passages"])}


def fit_listwise(data: dict[str, np.ndarray], l2: float = L2):
    """Weights maximising the softmax probability of the answering candidates within each in-corpus
    question (a conditional logit, L2-penalised on standardised features), fitted to convergence
    by L-BFGS. Returns (weights, mean, std), the weights in raw units."""
    from scipy.optimize import minimize

    x, y, group = data["x"], data["y"], data["group"]
    keep = _answerable_groups(y, group) & data["in_corpus"].astype(bool)
    x, y, group = x[keep], y[keep], group[keep]
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    _, index = np.unique(group, return_inverse=True)
    groups = index.max() + 1
    # Spread each question's credit over its answering candidates.
    target = y / np.bincount(index, weights=y, minlength=groups)[index]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = z @ w
        top = np.full(groups, -np.inf)
        np.maximum.at(top, index, s)
        e = np.exp(s - top[index])
        total = np.bincount(index, weights=e, minlength=groups)
        log_p = s - top[index] - np.log(total)[index]
        p = e / total[index]
        value = -float(target @ log_p) / groups + 0.5 * l2 * float(w @ w)
        return value, z.T @ (p - target) / groups + l2 * w

    w = minimize(loss, np.zeros(z.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 1000}).x
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


def misses(data: dict[str, np.ndarray], weights: np.ndarray) -> dict:
    """Of the in-corpus questions whose best-scored candidate misses while another holds the answer:
    how many have it in another sentence of the chosen passage, how many in another passage."""
    same, other = 0, 0
    for g in np.unique(data["group"][data["in_corpus"].astype(bool)]):
        members = np.flatnonzero(data["group"] == g)
        best = members[np.argmax(data["x"][members] @ weights)]
        if data["y"][best] or not data["y"][members].any():
            continue
        in_passage = members[data["passage"][members] == data["passage"][best]]
        same, other = (same + 1, other) if data["y"][in_passage].any() else (same, other + 1)
    return {"answer_in_the_chosen_passage": same, "answer_in_another_passage": other}


def fit_refusal(sets: dict[str, list[tuple[dict[str, np.ndarray], np.ndarray]]]) -> dict:
    """A logistic model of "the question is answered in the corpus" over refusal_evidence (each set,
    a list of collections with the ranker weights that score them, weighing the same in all), and
    the highest probability threshold that still answers ANSWERED of every set's in-corpus questions."""
    return fit_refusal_on({name: refusal_rows(parts) for name, parts in sets.items()})


def fit_refusal_on(sets: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """fit_refusal over each set's (evidence rows, in-corpus flags), whatever the evidence is."""
    evidence, in_corpus, weight, which = [], [], [], []
    for name, (x, y) in sets.items():
        evidence.append(x)
        in_corpus.append(y)
        weight.append(np.full(len(y), 1.0 / len(y)))
        which.append(np.full(len(y), name))
    x, y, sample, which = (np.concatenate(column) for column in (evidence, in_corpus, weight, which))
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


def refusal_rows(parts: list[tuple[dict[str, np.ndarray], np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Each question's refusal_evidence (its candidates scored by its collection's weights), and
    whether its article is in the index (1.0) or not (0.0)."""
    evidence, in_corpus = [], []
    for data, weights in parts:
        for g in np.unique(data["group"]):
            members = data["group"] == g
            rows = data["x"][members]
            evidence.append(refusal_evidence(rows @ weights, rows))
            in_corpus.append(float(data["in_corpus"][members][0]))
    return np.array(evidence), np.array(in_corpus)


def refusal_rates(parts: list[tuple[dict[str, np.ndarray], np.ndarray]], refusal: dict) -> dict:
    """Corpus size, answered share of in-corpus questions and refused share of the others, at the fitted threshold."""
    x, y = refusal_rows(parts)
    sure = 1 / (1 + np.exp(-(x @ np.asarray(refusal["refusal_weights"]) + refusal["refusal_bias"]))) >= refusal["min_probability"]
    return {"passages": int(parts[0][0]["passages"][0]), "in_corpus": int(y.sum()),
            "answered": round(float(np.mean(sure[y == 1])), 4), "out_of_corpus": int((y == 0).sum()),
            "out_of_corpus_refused": round(float(np.mean(~sure[y == 0])), 4)}


def merge(first: dict[str, np.ndarray], second: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Two collections as one, their question groups kept apart."""
    offset = first["group"].max() + 1
    return {k: np.concatenate([first[k], second[k] + (offset if k == "group" else 0)]) for k in first}


def fold(title: str) -> int:
    """Which of the FOLDS fixed parts of the train slice an article is in (by a hash of its title)."""
    return int.from_bytes(hashlib.sha256(f"fold:{title}".encode()).digest()[:4], "big") % FOLDS


def train_folds(train: EvalSet) -> list[EvalSet]:
    """The train slice's articles in FOLDS fixed parts, each with its questions."""
    return [EvalSet({t: text for t, text in train.articles.items() if fold(t) == number},
                    tuple(q for q in train.questions if q.article is not None and fold(q.article) == number))
            for number in range(FOLDS)]


def collect_folds(train: EvalSet) -> list[dict[str, np.ndarray]]:
    """Each train fold indexed alone, its last FOLD_HOLDOUT articles left out of the index."""
    return [collect(f"tydi-train-fold{number}", part, set(list(part.articles)[-FOLD_HOLDOUT:]))
            for number, part in enumerate(train_folds(train))]


def merge_all(collections: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    merged = collections[0]
    for other in collections[1:]:
        merged = merge(merged, other)
    return merged


def main() -> int:
    require_data("tydiqa-en-train.json", "squad2-train-10.json")
    tydi = load_eval_set(DATA / "tydiqa-en-train.json")
    calib = select_slice(tydi, "calib")
    train = select_slice(tydi, "train")
    folds = collect_folds(train)
    # The whole train slice as one corpus, four times larger than the test corpus, to see how refusal
    # holds as a shelf grows (not fitted on). Each question is scored by weights fitted without its fold.
    whole = search_candidates("tydi-train-whole", train, set(list(train.articles)[-FOLD_HOLDOUT:]))
    squad = collect("squad-train", load_eval_set(DATA / "squad2-train-10.json"), set())
    held = collect("tydi-calib", calib, set(list(calib.articles)[-HOLDOUT:]))
    squad_set = load_eval_set(DATA / "squad2-train-10.json")
    squad_held = collect("squad-train-holdout", squad_set, set(list(squad_set.articles)[-SQUAD_HOLDOUT:]))
    weights, _, _ = fit_listwise(merge_all([*folds, squad]))
    # Each fold's questions scored by weights that never saw them, as test questions will be.
    out_of_fold = [(fold, fit_listwise(merge_all([*folds[:n], *folds[n + 1:], squad]))[0])
                   for n, fold in enumerate(folds)]
    baseline = np.zeros(len(FEATURES))
    baseline[FEATURES.index("retrieval")] = 1.0
    # The calib slice's 234 in-corpus questions alone would set a noisy threshold: pooled with the folds.
    whole_out_of_fold = [(candidate_features(whole, lambda item, n=n: fold(item["article"]) == n), fold_weights)
                         for n, (_, fold_weights) in enumerate(out_of_fold)]
    # The calib slice's 234 in-corpus questions alone would set a noisy threshold: pooled with the folds.
    refusal = fit_refusal({"tydi_train_folds_and_calib": [*out_of_fold, (held, weights)],
                           "squad_train": [(squad_held, weights)]})
    MODEL_DIR.mkdir(exist_ok=True)
    (MODEL_DIR / "ranker.json").write_text(json.dumps({
        "features": FEATURES, "weights": [round(w, 6) for w in weights.tolist()],
        "refusal_features": REFUSAL_FEATURES, "refusal_weights": [round(w, 6) for w in refusal["refusal_weights"]],
        "refusal_bias": round(refusal["refusal_bias"], 6),
    }, indent=1) + "\n", encoding="utf-8")
    write_checksum(MODEL_DIR, FILES)
    set_defaults(ranker_min_probability=refusal["min_probability"])
    report = {
        "data": f"fit: TyDi QA English train slice (in {FOLDS} folds, each indexed alone with {FOLD_HOLDOUT} articles "
                "held out of its index) + 10 SQuAD 2.0 train articles; refusal: the train folds, each question "
                f"scored by weights fitted without its fold, the TyDi calib slice ({HOLDOUT} articles held out of the index) and the SQuAD train articles "
                f"({SQUAD_HOLDOUT} held out)",
        "l2": L2,
        "top_sentence_hit": {
            "tydi_train_out_of_fold": {
                "retrieval": round(float(np.mean([top1(part, baseline) for part, _ in out_of_fold])), 4),
                "ranker": round(float(np.mean([top1(part, w) for part, w in out_of_fold])), 4)},
            **{name: {"retrieval": round(top1(data, baseline), 4), "ranker": round(top1(data, weights), 4)}
               for name, data in (("squad_train", squad), ("tydi_calib", held))},
        },
        "tydi_calib_misses": misses(held, weights),
        "min_probability": refusal["min_probability"], "refusal_calibration": refusal["calibration"],
        "refusal_by_corpus": {
            name: refusal_rates(parts, refusal) for name, parts in (
                ("tydi_train_folds", out_of_fold), ("tydi_train_whole", whole_out_of_fold),
                ("tydi_calib", [(held, weights)]), ("squad_train", [(squad_held, weights)]))},
    }
    write_json_results("ranker-fit.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
