"""A learned sentence ranker: a linear model over retrieval's evidence for each candidate.

Retrieval's hand-mixed score was tuned on SQuAD, whose questions reuse the answer
sentence's words; real questions paraphrase. The ranker adds what kind of answer the
question asks for (a year for "when", a name for "who", a definition for "what is")
and fits the weights on real questions (TyDi QA's train slice) and SQuAD train
articles: `make fit-ranker`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.answering.selector import SelectorUnavailable, verify
from index.search.hybrid import Hit
from index.search.lexical import tokenize

MODEL_DIR = Path(__file__).resolve().parent / "models" / "ranker"
FILES = ("ranker.json",)

QUESTION_KINDS = ("when", "who", "where", "how_many", "what_is", "other")
SENTENCE_TRAITS = ("has_year", "has_number", "new_names", "defines", "first_in_passage", "new_words")
BASE = (
    "dense", "lexical", "passage_dense", "passage_lexical", "coverage", "retrieval",
    "first_in_passage", "order", "length",
    # The answer often sits beside the sentence that echoes the question.
    "previous_dense", "previous_lexical", "next_dense", "next_lexical",
    # Real questions name a topic every candidate shares; the words that tell candidates apart
    # count (weighted by how few candidates hold them, overall and within the passage).
    "distinct_overlap", "passage_distinct_overlap", "dense_vs_passage", "lexical_vs_passage",
    # Share of the question's names (capitalised words) found among its document's candidates.
    "names_in_document",
)
FEATURES = BASE + tuple(f"{kind}*{trait}" for kind in QUESTION_KINDS for trait in SENTENCE_TRAITS)

_KINDS = (
    ("when", re.compile(r"\b(when|what year|which year|what date|how long ago)\b", re.I)),
    ("how_many", re.compile(r"\bhow (many|much|long|old|big|large|tall|far|high)\b|\bwhat (is|was) the (population|number|size|area)\b", re.I)),
    ("who", re.compile(r"\bwho(m|se)?\b", re.I)),
    ("where", re.compile(r"\bwhere\b|\bwhat (country|city|state|continent|place)\b", re.I)),
    ("what_is", re.compile(r"^\s*(what|who) (is|are|was|were) (an? |the )?[\w'’ -]{1,40}\??\s*$", re.I)),
)
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b|\b(January|February|March|April|May|June|July|August|September|October|November|December)\b")
_NUMBER = re.compile(r"\d")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+")
_DEFINES = re.compile(r"\b(is|are|was|were) (an?|the|one of)\b|\brefers to\b|\bknown as\b")


def question_kind(question: str) -> str:
    """What sort of answer the question asks for (the first kind that matches; `other` if none)."""
    return next((kind for kind, pattern in _KINDS if pattern.search(question)), "other")


def features(question: str, hits: Sequence[Hit]) -> np.ndarray:
    """One row of FEATURES per candidate sentence."""
    kind = QUESTION_KINDS.index(question_kind(question))
    asked = set(tokenize(question))
    names = question_names(question)
    words = [tokenize(hit.text) for hit in hits]
    terms = [set(each) for each in words]
    distinct = _distinct_overlap(asked, terms, [0] * len(hits))
    passage_distinct = _distinct_overlap(asked, terms, [hit.passage_id for hit in hits])
    best_in_passage: dict[int, tuple[float, float]] = {}
    document_terms: dict[int, set[str]] = {}
    for hit, held in zip(hits, terms):
        dense, lexical = best_in_passage.get(hit.passage_id, (-1e9, -1e9))
        best_in_passage[hit.passage_id] = (max(dense, hit.dense), max(lexical, hit.lexical))
        document_terms.setdefault(hit.document_id, set()).update(held)
    rows = np.zeros((len(hits), len(FEATURES)))
    by_sentence = {hit.sentence_id: hit for hit in hits}
    for number, (row, hit) in enumerate(zip(rows, hits)):
        previous, following = (by_sentence.get(hit.sentence_id + step) for step in (-1, 1))
        previous = previous if previous is not None and previous.passage_id == hit.passage_id else None
        following = following if following is not None and following.passage_id == hit.passage_id else None
        dense, lexical = best_in_passage[hit.passage_id]
        row[: len(BASE)] = (
            hit.dense, hit.lexical, hit.passage_dense, hit.passage_lexical, hit.coverage, hit.score,
            float(hit.order == 0), min(hit.order, 8) / 8, math.log(max(len(hit.text), 10)),
            previous.dense if previous else 0.0, previous.lexical if previous else 0.0,
            following.dense if following else 0.0, following.lexical if following else 0.0,
            distinct[number], passage_distinct[number], hit.dense - dense, hit.lexical - lexical,
            len(names & document_terms[hit.document_id]) / len(names) if names else 1.0,
        )
        start = len(BASE) + kind * len(SENTENCE_TRAITS)
        row[start : start + len(SENTENCE_TRAITS)] = _traits(hit, words[number], asked)
    return rows


def question_names(question: str) -> set[str]:
    """The question's names: capitalised words after its first, and words with digits or capitals inside."""
    tokens = re.findall(r"\w[\w'’.-]*", question)
    named = [token for index, token in enumerate(tokens)
             if (index > 0 and token[0].isupper()) or any(c.isdigit() for c in token) or token[1:] != token[1:].lower()]
    return set(tokenize(" ".join(named)))


def _distinct_overlap(asked: set[str], terms: list[set[str]], groups: list[int]) -> list[float]:
    # Within each group of candidates, a question word held by few of them weighs more
    # (an idf over the candidates), and a candidate scores its share of the weight present.
    members: dict[int, list[int]] = {}
    for number, group in enumerate(groups):
        members.setdefault(group, []).append(number)
    values = [0.0] * len(terms)
    for numbers in members.values():
        counts = {term: sum(term in terms[n] for n in numbers) for term in asked}
        weight = {term: math.log(1.0 + len(numbers) / count) for term, count in counts.items() if count}
        total = sum(weight.values())
        for n in numbers:
            values[n] = sum(w for term, w in weight.items() if term in terms[n]) / total if total else 0.0
    return values


def _traits(hit: Hit, words: list[str], asked: set[str]) -> tuple[float, ...]:
    new = [word for word in words if word not in asked]
    names = set(tokenize(" ".join(_NAME.findall(hit.text)))) - asked
    return (
        float(bool(_YEAR.search(hit.text))), float(bool(_NUMBER.search(hit.text))), min(len(names), 4) / 4,
        float(bool(_DEFINES.search(hit.text))), float(hit.order == 0), len(new) / max(len(words), 1),
    )


REFUSAL_FEATURES = ("best", "margin", "coverage", "dense", "passage_dense", "lexical", "retrieval", "names_found")


_NAMES = FEATURES.index("names_in_document")


def refusal_evidence(scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """What the refusal model reads, from candidates' ranker scores and FEATURES rows: the best
    score and its lead over the next, the best one's passage coverage and word overlap, the
    best sentence and passage cosines, retrieval's own best score, and how many of the question's
    names its document's candidates hold."""
    best = int(np.argmax(scores))
    margin = scores[best] - np.partition(scores, -2)[-2] if len(scores) > 1 else 1.0
    return np.array([scores[best], margin, rows[best, 4], rows[:, 0].max(), rows[:, 2].max(), rows[best, 1],
                     rows[:, 5].max(), rows[best, _NAMES]])


@dataclass(frozen=True)
class Judgement:
    """The ranker's score for each candidate and its probability that the best one answers; with the
    selector, how much it lifts each candidate it read (None for the others) and its probability instead."""

    scores: np.ndarray
    probability: float
    boosts: tuple[float | None, ...] | None = None
    # With the selector: each read candidate's own probability of answering (None for the others), which every
    # quote after the first must pass too, and the refusal's evidence for the best one (bench/shelves.py fits on it).
    probabilities: tuple[float | None, ...] | None = None
    evidence: tuple[float, ...] = ()
    # Each candidate's names_in_document and dense features, which the stacked refusal may read beside the logits.
    traits: np.ndarray | None = None

    @property
    def lifted(self) -> np.ndarray:
        """Each candidate's score plus its lift (0 where none): what the answer's order follows."""
        if self.boosts is None:
            return self.scores
        return self.scores + np.array([lift or 0.0 for lift in self.boosts])


@dataclass(frozen=True)
class Ranker:
    """Scores candidate sentences (higher: likelier to answer) and how likely the best one answers."""

    weights: tuple[float, ...]
    refusal_weights: tuple[float, ...]
    refusal_bias: float

    @classmethod
    def load(cls, directory: Path = MODEL_DIR) -> Ranker:
        """The fitted ranker, its checksum verified first."""
        verify(directory, FILES, "sentence ranker")
        stored = json.loads((directory / "ranker.json").read_text(encoding="utf-8"))
        if tuple(stored["features"]) != FEATURES or tuple(stored["refusal_features"]) != REFUSAL_FEATURES:
            raise SelectorUnavailable("the sentence ranker was fitted on other features; run `make fit-ranker`")
        return cls(tuple(stored["weights"]), tuple(stored["refusal_weights"]), float(stored["refusal_bias"]))

    @property
    def retrieval_weight(self) -> float:
        """What one unit of retrieval's own score is worth in this ranker's scores."""
        return self.weights[FEATURES.index("retrieval")]

    def scores(self, question: str, hits: Sequence[Hit]) -> np.ndarray:
        """One score per hit."""
        return self.judge(question, hits).scores

    def judge(self, question: str, hits: Sequence[Hit]) -> Judgement:
        """One score per hit, and the probability that the best of them answers the question
        (the features are read once for both)."""
        if not hits:
            return Judgement(np.zeros(0), 0.0)
        rows = features(question, hits)
        scores = rows @ np.asarray(self.weights)
        z = float(refusal_evidence(scores, rows) @ np.asarray(self.refusal_weights)) + self.refusal_bias
        return Judgement(scores, 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))), traits=rows[:, [_NAMES, 0]])
