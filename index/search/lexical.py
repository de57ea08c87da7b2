"""BM25 over passages, in plain numpy arrays (saved as .npy, loaded without pickle).

Kept in numpy rather than scipy or bm25s so that answering a question imports
neither: a cold `verbatim ask` pays for every import.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import Stemmer

_TOKEN = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    many much s t""".split()
)
K1 = 1.5
B = 0.75


_STEMMER = Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed word tokens without stopwords ("located" and "location" meet)."""
    return [_stem(token) for token in _TOKEN.findall(text.lower()) if token not in STOPWORDS]


@lru_cache(maxsize=200_000)
def _stem(token: str) -> str:
    return _STEMMER.stemWord(token)


@dataclass(frozen=True)
class LexicalIndex:
    """Postings of BM25 weights by term: term_offsets[t]:term_offsets[t+1] index doc_ids/weights."""

    vocabulary: dict[str, int]
    idf: np.ndarray
    term_offsets: np.ndarray
    doc_ids: np.ndarray
    weights: np.ndarray
    size: int

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every passage for the query."""
        scores = np.zeros(self.size, dtype=np.float32)
        for term in set(query_tokens):
            term_id = self.vocabulary.get(term)
            if term_id is None:
                continue
            start, end = self.term_offsets[term_id], self.term_offsets[term_id + 1]
            scores[self.doc_ids[start:end]] += self.weights[start:end]
        return scores

    def term_idf(self, term: str) -> float:
        """Inverse document frequency of a term (0 for unseen terms)."""
        term_id = self.vocabulary.get(term)
        return 0.0 if term_id is None else float(self.idf[term_id])

    def save(self, directory: Path) -> list[Path]:
        """Write the index as .npy arrays and a JSON vocabulary; return the files written."""
        paths = []
        for name in ("idf", "term_offsets", "doc_ids", "weights"):
            path = directory / f"bm25_{name}.npy"
            np.save(path, getattr(self, name), allow_pickle=False)
            paths.append(path)
        vocabulary_path = directory / "bm25_vocabulary.json"
        vocabulary_path.write_text(json.dumps({"size": self.size, "terms": self.vocabulary}), encoding="utf-8")
        paths.append(vocabulary_path)
        return paths

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        """Read an index written by `save`."""
        arrays = {
            name: np.load(directory / f"bm25_{name}.npy", allow_pickle=False)
            for name in ("idf", "term_offsets", "doc_ids", "weights")
        }
        vocabulary = json.loads((directory / "bm25_vocabulary.json").read_text(encoding="utf-8"))
        return cls(vocabulary["terms"], size=vocabulary["size"], **arrays)


def build_lexical(texts: Sequence[str]) -> LexicalIndex:
    """A BM25 index of the texts, one entry per text in order."""
    vocabulary: dict[str, int] = {}
    term_ids: list[int] = []
    lengths = np.zeros(len(texts), dtype=np.int64)
    for row, text in enumerate(texts):
        tokens = tokenize(text)
        lengths[row] = len(tokens)
        term_ids.extend(vocabulary.setdefault(token, len(vocabulary)) for token in tokens)
    rows = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    # One (term, passage) pair per distinct occurrence, sorted by term then passage.
    pairs, counts = np.unique(np.asarray(term_ids, dtype=np.int64) * max(1, len(texts)) + rows, return_counts=True)
    terms, doc_ids = pairs // max(1, len(texts)), (pairs % max(1, len(texts))).astype(np.int32)
    document_frequency = np.bincount(terms, minlength=len(vocabulary))
    idf = np.log(1 + (len(texts) - document_frequency + 0.5) / (document_frequency + 0.5)).astype(np.float32)
    average_length = float(lengths.mean()) if len(texts) and lengths.mean() > 0 else 1.0
    norm = K1 * (1 - B + B * lengths[doc_ids] / average_length)
    weights = (idf[terms] * counts * (K1 + 1) / (counts + norm)).astype(np.float32)
    offsets = np.zeros(len(vocabulary) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(document_frequency)
    return LexicalIndex(vocabulary, idf, offsets, doc_ids, weights, len(texts))
