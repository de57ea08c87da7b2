"""answer(question) -> Answer: the one call every interface makes."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from bot.types import Answer, Quote
from config import Settings, load_settings
from index import store
from index.errors import BadQuestion
from index.lexical import tokenize
from index.search import Hit, Searcher, Weights

_WORD = re.compile(r"\w")
# Quotes sharing this much of their vocabulary count as the same quote.
NEAR_DUPLICATE = 0.8


class Answerer:
    """Holds the model and an open index; reopens the index when a rebuild replaces it."""

    def __init__(self, settings: Settings | None = None, weights: Weights | None = None) -> None:
        self.settings = settings or load_settings()
        self._weights = weights
        self._lock = threading.Lock()
        # Open the index first: a missing index should fail before the slow model load.
        self._searcher = Searcher(self.settings, self._embed_query, weights)
        self._embedder = _load_query_embedder(self.settings)
        self._pointer_mtime = _pointer_mtime(self.settings.index_dir)

    def answer(self, question: str, top: int | None = None) -> Answer:
        """Quotes from the documents that answer `question`, or a refusal."""
        started = time.perf_counter()
        question = question.strip()
        check_question(question, self.settings.max_question_chars)
        searcher = self._current_searcher()
        hits = searcher.search(question)
        quotes = select_quotes(hits, top or self.settings.top_quotes, self.settings.min_score)
        took_ms = (time.perf_counter() - started) * 1000
        return Answer(question, bool(quotes), tuple(quotes), took_ms)

    def _embed_query(self, question: str):
        return self._embedder(question)

    @property
    def searcher(self) -> Searcher:
        return self._current_searcher()

    def _current_searcher(self) -> Searcher:
        # A rebuild (CLI, watch mode or /reindex) replaces CURRENT; pick it up
        # between questions without a restart.
        mtime = _pointer_mtime(self.settings.index_dir)
        if mtime != self._pointer_mtime:
            with self._lock:
                if mtime != self._pointer_mtime:
                    self._searcher = Searcher(self.settings, self._embed_query, self._weights)
                    self._pointer_mtime = mtime
        return self._searcher


def check_question(question: str, max_chars: int) -> None:
    """Raise BadQuestion with a helpful message if the question can't be searched."""
    if not question:
        raise BadQuestion("the question is empty: ask something, e.g. \"Who wrote this article?\"")
    if len(question) > max_chars:
        raise BadQuestion(f"the question is {len(question)} characters long; keep it under {max_chars}")
    if not _WORD.search(question):
        raise BadQuestion("the question has no words to search for")


def select_quotes(hits: list[Hit], top: int, min_score: float) -> list[Quote]:
    """The best hits as quotes: above the threshold, no repeats, no near-duplicates."""
    quotes: list[Quote] = []
    chosen_terms: list[set[str]] = []
    for hit in hits:
        if len(quotes) == top or hit.score < min_score:
            break
        terms = set(tokenize(hit.text)) or {hit.text}
        if any(_similarity(terms, other) >= NEAR_DUPLICATE for other in chosen_terms):
            continue
        chosen_terms.append(terms)
        quotes.append(Quote(hit.text, hit.source, hit.start, hit.end, hit.line, round(hit.score, 4)))
    return quotes


def _similarity(first: set[str], second: set[str]) -> float:
    return len(first & second) / len(first | second)


def _pointer_mtime(index_dir: Path) -> float:
    try:
        return (index_dir / store.CURRENT).stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def _load_query_embedder(settings: Settings):
    from index.embed import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(settings.model, settings.embed_batch_size)
    return lambda question: embedder.embed([question])[0]
