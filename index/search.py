"""Search a built index: hybrid (dense + BM25) passage retrieval, then sentence scoring."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from config import Settings
from index import store
from index.errors import IndexCorrupt, IndexMismatch
from index.lexical import K1, LexicalIndex, tokenize

QueryEmbedder = Callable[[str], np.ndarray]


@dataclass(frozen=True)
class Weights:
    """How the retrieval signals are mixed (defaults measured with `verbatim eval`)."""

    passage_dense: float = 0.5
    sentence_dense: float = 0.4
    sentence_lexical: float = 0.3
    sentence_passage: float = 0.3


@dataclass(frozen=True)
class Hit:
    """A candidate sentence: its exact place in a document and how well it matches."""

    source: str
    start: int
    end: int
    line: int
    text: str
    score: float
    passage_id: int
    sentence_id: int
    document_id: int


class Searcher:
    """An open index generation, ready to answer many queries."""

    def __init__(self, settings: Settings, embed_query: QueryEmbedder, weights: Weights | None = None) -> None:
        self.generation = store.current_generation(settings.index_dir)
        self.manifest = store.Manifest.read(self.generation)
        check_compatible(self.manifest, settings)
        store.verify(self.generation, self.manifest)
        self.weights = weights or Weights()
        self._embed_query = embed_query
        self._candidates = settings.candidate_passages
        try:
            import faiss

            self._faiss = faiss.read_index(str(self.generation / store.PASSAGE_VECTORS))
            self._sentence_vectors = np.load(self.generation / store.SENTENCE_VECTORS, mmap_mode="r", allow_pickle=False)
            self._lexical = LexicalIndex.load(self.generation)
        except (OSError, RuntimeError, ValueError) as error:
            raise IndexCorrupt(f"cannot read index {self.generation}: {error}; run `verbatim index build --full`") from error
        self._metadata = store.open_metadata(self.generation)
        self._texts: OrderedDict[int, str] = OrderedDict()

    def search(self, question: str) -> list[Hit]:
        """Sentences of the best passages, best first."""
        if self.manifest.passages == 0:
            return []
        question_vector = np.asarray(self._embed_query(question), dtype=np.float32).reshape(1, -1)
        query_terms = tokenize(question)
        passage_scores = self._score_passages(question_vector, query_terms)
        return self._score_sentences(question_vector[0], query_terms, passage_scores)

    def close(self) -> None:
        self._metadata.close()

    def _score_passages(self, question_vector: np.ndarray, query_terms: list[str]) -> dict[int, float]:
        k = min(self._candidates, self.manifest.passages)
        dense_scores, dense_ids = self._faiss.search(question_vector, k)
        dense = {int(i): float(s) for i, s in zip(dense_ids[0], dense_scores[0]) if i >= 0}
        lexical_all = self._lexical.scores(query_terms) / _max_bm25(self._lexical, query_terms)
        lexical_top = np.argsort(-lexical_all)[:k]
        candidates = set(dense) | {int(i) for i in lexical_top if lexical_all[i] > 0}
        weight = self.weights.passage_dense
        scores = {}
        for passage_id in candidates:
            cosine = dense.get(passage_id)
            if cosine is None:
                cosine = float(self._faiss.reconstruct(passage_id) @ question_vector[0])
            scores[passage_id] = weight * cosine + (1 - weight) * float(lexical_all[passage_id])
        best = sorted(scores.items(), key=lambda item: -item[1])[:k]
        return dict(best)

    def _score_sentences(
        self, question_vector: np.ndarray, query_terms: list[str], passage_scores: dict[int, float]
    ) -> list[Hit]:
        placeholders = ",".join("?" * len(passage_scores))
        rows = self._metadata.execute(
            f"SELECT s.id, s.passage_id, s.document_id, d.source, s.start, s.end, s.line "
            f"FROM sentences s JOIN documents d ON d.id = s.document_id WHERE s.passage_id IN ({placeholders})",
            list(passage_scores),
        ).fetchall()
        if not rows:
            return []
        sentence_ids = np.array([row[0] for row in rows])
        cosines = np.asarray(self._sentence_vectors[np.sort(sentence_ids)], dtype=np.float32) @ question_vector
        cosine_by_id = dict(zip(np.sort(sentence_ids).tolist(), cosines.tolist()))
        term_weights = {term: self._lexical.term_idf(term) for term in set(query_terms)}
        total_weight = sum(term_weights.values()) or 1.0
        w = self.weights
        hits = []
        for sentence_id, passage_id, document_id, source, start, end, line in rows:
            text = self.document_text(document_id)[start:end]
            present = set(tokenize(text))
            overlap = sum(weight for term, weight in term_weights.items() if term in present) / total_weight
            score = (
                w.sentence_dense * cosine_by_id[sentence_id]
                + w.sentence_lexical * overlap
                + w.sentence_passage * passage_scores[passage_id]
            )
            hits.append(Hit(source, start, end, line, text, score, passage_id, sentence_id, document_id))
        hits.sort(key=lambda hit: -hit.score)
        return hits

    def document_text(self, document_id: int) -> str:
        """The full indexed text of a document (cached)."""
        text = self._texts.get(document_id)
        if text is None:
            row = self._metadata.execute("SELECT text FROM documents WHERE id = ?", (document_id,)).fetchone()
            text = row[0]
            self._texts[document_id] = text
            if len(self._texts) > 64:
                self._texts.popitem(last=False)
        else:
            self._texts.move_to_end(document_id)
        return text


def check_compatible(manifest: store.Manifest, settings: Settings) -> None:
    """Raise IndexMismatch if the index cannot serve these settings."""
    if manifest.format_version != store.FORMAT_VERSION:
        raise IndexMismatch(
            f"index format {manifest.format_version} is not the supported {store.FORMAT_VERSION}; "
            "run `verbatim index build --full`"
        )
    if manifest.model != settings.model:
        raise IndexMismatch(
            f"index was built with model {manifest.model!r} but settings name {settings.model!r}; "
            "run `verbatim index build` to rebuild it"
        )


def _max_bm25(lexical: LexicalIndex, query_terms: Sequence[str]) -> float:
    # The score a passage would get if it matched every query term strongly,
    # so that lexical scores share one 0..1 scale across questions.
    total = sum(lexical.term_idf(term) for term in set(query_terms)) * (K1 + 1)
    return total if total > 0 else math.inf
