"""Evidence the refusal does not read yet, tried on the fit side's shelves: `make try-shelf-evidence`.

The shipped refusal (bench/shelves.py) reads the selector's best of 3 read sentences, the ranker's probability,
the shelf's size and two traits of the sentence. On the thousands fit shelf it refuses about three quarters of
out-of-corpus questions when it answers 95% of the others. This asks whether more evidence moves that:
- the candidate set: the selector reading the ranker's best 8 sentences, not 3 (the best logit among them,
  the best from another document than the chosen one, the lead over it, how many documents the 8 come from);
- the question's subject: how much of the question's weight (each word by its inverse document frequency on
  the shelf) the chosen sentence's document holds, how much the sentence holds, and the rarest question word
  the document lacks;
- the passage reader's reading of the selector's best 2 sentences with their neighbours (its score of the one
  it puts first, and that score's lead over the others read), as `reader = true` reads every question.
Each variant is fitted as bench/shelves.py fits (every size answering 95% of its in-corpus questions), in
sample and across two halves of the articles (fitted on one, measured on the other, both ways). It also counts
how many in-corpus questions have their answer among the sentences read at all, and how many the shipped
evidence answers when each size refuses 90% of its out-of-corpus questions. Fit side only: it never reads what
bench/shelves.py measures on. Writes bench/results/shelves-evidence.json.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time

import numpy as np

import shelves
from common import held_out_index, require_data, write_json_results
from fit_ranker import fit_refusal_on

from bot.answering.answer import Answerer, lifted_by, read_best, with_selector
from bot.answering.reader import Reader
from bot.answering.selector import ALL_FEATURES, pair_text, stack_evidence
from bot.cli.evaluation import EvalSet
from index.search.lexical import tokenize

READ = 8  # sentences the selector reads here (it reads settings.selector_candidates, 3, when answering)
SHIPPED_READ = 3
CANDIDATE_SET = ("best_of_8", "best_other_document", "lead_over_other_document", "documents_of_8")
SUBJECT = ("question_weight_in_document", "question_weight_in_sentence", "rarest_word_missing")
READER = ("reader_best", "reader_margin")
VARIANTS = {"shipped": (), "+ candidate set": CANDIDATE_SET, "+ question's subject": SUBJECT,
            "+ both": CANDIDATE_SET + SUBJECT, "+ the passage reader": READER}


def document_frequencies(texts) -> tuple[dict[str, int], int]:
    frequencies: dict[str, int] = {}
    count = 0
    for text in texts:
        count += 1
        for word in set(tokenize(text)):
            frequencies[word] = frequencies.get(word, 0) + 1
    return frequencies, count


def subject_evidence(question: str, sentence: str, document_words: set[str], frequencies: dict[str, int],
                     documents: int) -> dict[str, float]:
    weights = {word: math.log((documents + 1) / (frequencies.get(word, 0) + 0.5)) for word in dict.fromkeys(tokenize(question))}
    total = sum(weights.values()) or 1.0
    in_sentence = set(tokenize(sentence))
    # Only words the shelf holds somewhere: a word no document has says nothing about which one was chosen.
    missing = [w for word, w in weights.items() if word not in document_words and frequencies.get(word, 0)]
    return {"question_weight_in_document": sum(w for word, w in weights.items() if word in document_words) / total,
            "question_weight_in_sentence": sum(w for word, w in weights.items() if word in in_sentence) / total,
            "rarest_word_missing": max(missing) / math.log(documents + 1.5) if missing else 0.0}


def candidate_evidence(logits: np.ndarray, documents: list[int], chosen: int) -> dict[str, float]:
    others = [float(logit) for logit, document in zip(logits, documents) if document != documents[chosen]]
    best_other = max(others) if others else -10.0  # below any logit the selector gives
    return {"best_of_8": float(logits.max()), "best_other_document": best_other,
            "lead_over_other_document": float(logits[chosen]) - best_other, "documents_of_8": float(len(set(documents)))}


def reader_evidence(reader: Reader, question: str, hits, judged, text, sentences: int = 2) -> dict[str, float]:
    """The reader's reading of the `sentences` best after the selector, as bot/answering/answer.py: with_reader reads."""
    read, scores = read_best(reader, question, hits, judged, text, sentences)
    if not len(read):
        return {"reader_best": -10.0, "reader_margin": 0.0}  # nothing read: below any score it gives
    chosen = int(np.argmax(lifted_by(reader.calibration, judged, read, scores).lifted[read]))
    best, margin = stack_evidence(0.5, scores, chosen, features=("best_logit", "logit_margin"))
    return {"reader_best": float(best), "reader_margin": float(margin)}


def ask_shelf(shelf: shelves.Shelf, reader: Reader) -> list[dict]:
    """The shipped evidence and the new, for each question of the shelf."""
    frequencies, documents = document_frequencies(shelf.articles.values())
    records = []
    with held_out_index(EvalSet(shelf.articles, shelf.questions), set(), "verbatim-evidence-") as settings:
        answerer = Answerer(settings)
        shelves.record_every_feature(answerer)
        selector = answerer.selector
        searcher = answerer.searcher
        words_of: dict[int, set[str]] = {}
        for question in shelf.questions:
            answer = answerer.answer(question.question)
            hits = searcher.search(question.question)
            if not hits:
                continue
            judged = answerer.ranker.judge(question.question, hits)
            read = np.argsort(-judged.scores, kind="stable")[:READ]
            texts = [hits[i].text for i in read]
            owners = [hits[i].document_id for i in read]
            logits = selector.scores(question.question, [pair_text(searcher.document_title(d), t) for d, t in zip(owners, texts)])
            chosen = int(np.argmax(logits[:SHIPPED_READ]))
            if owners[chosen] not in words_of:
                words_of[owners[chosen]] = set(tokenize(searcher.document_text(owners[chosen])))
            holds = [any(gold in text for gold in question.answers) for text in texts]
            selected = with_selector(selector, question.question, hits, judged, searcher.document_title,
                                     SHIPPED_READ, searcher.manifest.passages)
            records.append({
                "size": shelf.size, "article": question.article, "passages": searcher.manifest.passages,
                "in_corpus": question.article not in shelf.off_shelf and bool(question.answers),
                "evidence": list(answer.evidence),
                "new": {**candidate_evidence(logits, owners, chosen),
                        **subject_evidence(question.question, texts[chosen], words_of[owners[chosen]], frequencies, documents),
                        **reader_evidence(reader, question.question, hits, selected, searcher.document_text)},
                "answer_read": any(holds[:SHIPPED_READ]), "answer_in_8": any(holds),
            })
    return records


def sets_of(records: list[dict], names: tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per size, the shipped evidence and `names` (each alone and times log passages), and the in-corpus flags."""
    sets = {}
    for size in dict.fromkeys(r["size"] for r in records):
        group = [r for r in records if r["size"] == size]
        rows = [r["evidence"] + [r["new"][n] for n in names] + [r["new"][n] * math.log(r["passages"]) for n in names] for r in group]
        sets[size] = (np.array(rows), np.array([float(r["in_corpus"]) for r in group]))
    return sets


def half(article: str) -> int:
    return hashlib.sha256(f"evidence:{article}".encode()).digest()[0] % 2


def rates(refusal: dict, sets: dict) -> dict[str, dict[str, float]]:
    out = {}
    for size, (x, y) in sets.items():
        sure = shelves.probabilities(refusal, x) >= refusal["min_probability"]
        out[size] = {"answered": round(float(np.mean(sure[y == 1])), 4), "out_of_corpus_refused": round(float(np.mean(~sure[y == 0])), 4)}
    return out


def across_halves(records: list[dict], names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Fitted on one half of the articles and measured on the other, both ways; the two halves' rates averaged."""
    measured = []
    for fitted_half in (0, 1):
        fitted = fit_refusal_on(sets_of([r for r in records if half(r["article"]) == fitted_half], names))
        measured.append(rates(fitted, sets_of([r for r in records if half(r["article"]) != fitted_half], names)))
    return {size: {key: round((measured[0][size][key] + measured[1][size][key]) / 2, 4) for key in measured[0][size]}
            for size in measured[0]}


def reach(records: list[dict]) -> dict[str, dict[str, float]]:
    """Per size, the share of in-corpus questions whose answer is among the 3 sentences read, and the ranker's 8."""
    out = {}
    for size in dict.fromkeys(r["size"] for r in records):
        inside = [r for r in records if r["size"] == size and r["in_corpus"]]
        out[size] = {"in_corpus": len(inside), "answer_read": shelves.mean(r["answer_read"] for r in inside),
                     "answer_in_8": shelves.mean(r["answer_in_8"] for r in inside)}
    return out


def trade_off(records: list[dict], refused: float = 0.9) -> dict[str, float]:
    """Per size, the share of in-corpus questions the shipped evidence's in-sample fit still answers at the
    threshold that refuses `refused` of that size's out-of-corpus questions: the price of the target there."""
    sets = sets_of(records, ())
    fitted = fit_refusal_on(sets)
    out = {}
    for size, (x, y) in sets.items():
        p = shelves.probabilities(fitted, x)
        out[size] = round(float(np.mean(p[y == 1] >= np.quantile(p[y == 0], refused))), 4)
    return out


def main() -> int:
    require_data("tydiqa-en-train.json", "squad2-train-10.json")
    started = time.perf_counter()
    records, reader = [], Reader()
    for shelf in shelves.shelves("fit"):
        records.extend(ask_shelf(shelf, reader))
        print(f"{shelf.name}: {len(records)} questions so far, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    variants = {}
    for name, names in VARIANTS.items():
        in_sample = fit_refusal_on(sets_of(records, names))
        variants[name] = {"features": [*ALL_FEATURES, *names, *(f"{n}*log_passages" for n in names)],
                          "in_sample": in_sample["calibration"], "across_halves": across_halves(records, names)}
    write_json_results("shelves-evidence.json", {"data": __doc__.split("\n\n")[1], "reach": reach(records),
                                                 "answered_at_90_refused": trade_off(records),
                                                 "variants": variants, "seconds": round(time.perf_counter() - started)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
