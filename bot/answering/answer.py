"""answer(question) -> Answer: the one call every interface makes."""

from __future__ import annotations

import bisect
import functools
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from bot.answering.freshness import Freshness, rebuild_command
from bot.answering.headings import answers_only
from bot.answering.ranker import Judgement, Ranker
from bot.answering.reader import Reader
from bot.answering.selector import Calibration, Selector, pair_text
from bot.types import Answer, Quote
from config import Settings, load_settings
from index.embedding.engine import query_engine
from index.errors import BadQuestion, IndexMismatch
from index.search.hybrid import Background, Hit, Searcher, Weights
from index.search.lexical import tokenize
from index.storage import store

_WORD = re.compile(r"\w")
# "Who wrote this?", "What is the article called?": facts of the document itself, not of its topic.
_WHO_WROTE_IT = re.compile(
    r"\bwho (wrote|writes|authored|penned|is the (author|writer))\b(?! \w+ \w+ (by|of) (?!this|the (article|document|piece|text|report|post|essay)))"
    r"(?=.*\b(this|it|article|document|piece|text|report|post|essay|op-ed)\b|\W*$)|\bwho is the (author|writer)\W*$",
    re.I,
)
_WHAT_IS_IT_CALLED = re.compile(
    r"\b(title|headline|name) of (this|the) (article|document|piece|text|report|post|essay)\b|"
    r"\bwhat is (this|the) (article|document|piece|text|report|post|essay) (called|titled)\b",
    re.I,
)
# A line that is just a name, and a byline: "By Jane Doe".
_NAME = re.compile(r"[A-Z][\w.'’-]+(?:\s+[A-Z][\w.'’-]+){1,3}")
_BYLINE = re.compile(r"[Bb][Yy]\s+" + _NAME.pattern)
_BLANK_LINE = re.compile(r"\n\s*\n")
# Quotes sharing this much of their vocabulary count as the same quote.
NEAR_DUPLICATE = 0.8


class Answerer:
    """Holds the models and an open index; reopens the index when a rebuild replaces it."""

    def __init__(self, settings: Settings | None = None, weights: Weights | None = None) -> None:
        self.settings = settings or load_settings()
        self._weights = weights
        self._lock = threading.Lock()
        # Open the index first: a missing index should fail before any model load.
        # The selector (verified, then loaded) meanwhile loads beside the embedder.
        self._searcher = Searcher(self.settings, self._embed_query, weights)
        self.ranker = load_ranker(self.settings)
        # The selector re-reads the ranker's best sentences, and the reader the best after it with their
        # neighbours: each refines the judgement before it, so without the ranker (or the selector) it has
        # nothing to refine.
        selector = Background(load_selector, self.settings) if self.ranker else None
        # Only where it reads (every question, or those the selector is torn on): else no thread is started for it.
        reader = Background(load_reader, self.settings) if self.ranker and self.settings.selector and self.settings.reads_passages else None
        self.engine = _checked_engine(self.settings, self._searcher)
        self.selector = selector.result() if selector else None
        self.reader = reader.result() if reader else None
        self._pointer_mtime = _pointer_mtime(self.settings.index_dir)
        self.freshness = Freshness(self.settings)

    def answer(
        self, question: str, top: int | None = None, *,
        sources: Sequence[str] | None = None, prefer_sources: Sequence[str] = (),
    ) -> Answer:
        """Quotes from the documents that answer `question`, or a refusal naming the closest passage.

        `sources` (paths or fnmatch patterns) answers from those documents only; `prefer_sources`
        ranks their quotes a little higher (a follow-up prefers what was cited before)."""
        started = time.perf_counter()
        question = question.strip()
        check_question(question, self.settings.max_question_chars)
        searcher = self._current_searcher()
        # Restricted before ranking, so a scoped question gets the best passages of its documents.
        hits = searcher.search(question, searcher.matching_documents(sources) if sources else None)
        passages = searcher.manifest.passages
        # The ranker reads retrieval's own scores, for its order and its refusal alike.
        judged = self.ranker.judge(question, hits) if self.ranker else None
        if judged is not None and self.selector is not None:
            judged = with_selector(self.selector, question, hits, judged, searcher.document_title,
                                   self.settings.selector_candidates, passages)
            if self._reader_decides:
                judged = with_reader(self.reader, question, hits, judged, searcher.document_text,
                                     self.settings.reader_sentences, passages)
            elif self.reader is not None and doubtful(judged, self.settings.reader_doubt_margin):
                judged = reordered_by_reader(self.reader, question, hits, judged, searcher.document_text,
                                             self.settings.reader_sentences)
        ranked = rank(question, hits, searcher.document_edges, judged.scores if judged else None,
                      judged.boosts if judged else None)
        if prefer_sources and ranked and not ranked[0].about:
            # The boost is in retrieval's units; the ranker weighs one of those this much.
            scale = self.ranker.retrieval_weight if self.ranker else 1.0
            ranked = prefer(ranked, prefer_sources, self.settings.followup_source_boost * scale)
        sureness = judged.probability if judged else confidence(ranked)
        threshold = self._threshold()
        if ranked and ranked[0].about:
            sureness = max(sureness, threshold)  # a rule, not a guess: the document's own byline or title
        answered = sureness >= threshold
        not_sure = not answered and sureness >= self._not_sure_threshold()
        if answered and judged is not None and judged.probabilities is not None:
            ranked = gated(ranked, hits, judged.probabilities, threshold)
        # A refusal shows only the closest passage, and the byline or title answers a question about
        # the document by itself (what retrieval ranks after it is about the question's other words).
        top = 1 if not answered or (ranked and ranked[0].about) else (top or self.settings.top_quotes)
        ranked, hits = answers_only(ranked, hits, searcher.document_place)  # headings are context, not quotes
        quotes = select_quotes(ranked, hits, top, self.settings.quote_max_chars, searcher.document,
                               self.settings.quote_neighbour_margin)
        # Only what the files still say is shown: a quote no longer in its file is withheld.
        checked = self.freshness.check(quotes, searcher.generation)
        quotes = list(checked.quotes)
        stale = {"stale": checked.stale, "rebuild": rebuild_command(self.settings)} if checked.stale else {}
        took_ms = (time.perf_counter() - started) * 1000
        evidence = judged.evidence if judged else ()
        if answered:
            return Answer(question, bool(quotes), tuple(quotes), took_ms, sureness, evidence=evidence, **stale)
        return Answer(question, False, (), took_ms, sureness, quotes[0] if quotes else None,
                      not_sure=not_sure and bool(quotes), evidence=evidence, **stale)

    def _threshold(self) -> float:
        if self.ranker is None:
            return self.settings.min_confidence
        if self._reader_decides:
            return self.settings.reader_min_probability
        return self.settings.selector_min_probability if self.selector else self.settings.ranker_min_probability

    def _not_sure_threshold(self) -> float:
        """Below the answer threshold and at least this sure: the closest quote is shown as "not sure"."""
        settings = self.settings
        band = (None if self.ranker is None else settings.reader_not_sure_probability if self._reader_decides
                else settings.selector_not_sure_probability if self.selector else settings.ranker_not_sure_probability)
        return self._threshold() if band is None else min(band, self._threshold())

    @property
    def confident_above(self) -> float:
        """A confidence this high is shown as sure (green in Discord): half-way from the threshold to
        certainty for a probability, 0.3 above it for retrieval's own confidence."""
        threshold = self._threshold()
        return threshold + 0.3 if self.ranker is None else (threshold + 1.0) / 2

    @property
    def _reader_decides(self) -> bool:
        """Whether the reader reads every question and its score joins the refusal (`reader`), rather than only
        reordering the questions the selector is torn on."""
        return self.reader is not None and self.settings.reader

    def _embed_query(self, question: str):
        return self.engine.embedder.embed([question])[0]

    def refresh(self) -> None:
        """Switch to a rebuilt index now rather than at the next question."""
        self._current_searcher()

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
                    searcher = Searcher(self.settings, self._embed_query, self._weights)
                    self.engine = _checked_engine(self.settings, searcher)
                    self._searcher = searcher
                    self._pointer_mtime = mtime
        return self._searcher


def prefer(hits: list[Hit], sources: Sequence[str], boost: float) -> list[Hit]:
    """`hits` reordered as if those from `sources` scored `boost` more; their scores (and so the
    confidence an answer is refused by) stay their own."""
    preferred = set(sources)
    return sorted(hits, key=lambda hit: -(order(hit) + (boost if hit.source in preferred else 0.0)))


def load_selector(settings: Settings) -> Selector | None:
    """The trained answer selector (loaded once per process), unless settings turn it off."""
    return _shared_selector() if settings.selector else None


@functools.cache
def _shared_selector() -> Selector:
    return Selector()


def load_reader(settings: Settings) -> Reader | None:
    """The trained passage reader (loaded once per process), unless settings turn it off."""
    return _shared_reader() if settings.reads_passages else None


@functools.cache
def _shared_reader() -> Reader:
    return Reader()


def load_ranker(settings: Settings) -> Ranker | None:
    """The fitted sentence ranker (read once per process), unless settings turn it off."""
    return _shared_ranker() if settings.ranker else None


@functools.cache
def _shared_ranker() -> Ranker:
    return Ranker.load()


def gated(ranked: list[Hit], hits: Sequence[Hit], probabilities: Sequence[float | None], threshold: float) -> list[Hit]:
    """The first of `ranked`, then only those whose own probability of answering (`probabilities`, one per hit
    of `hits`; None where no model read it) reaches `threshold`: a weak quote never stands under a sure one."""
    passed = {hit.sentence_id for hit, probability in zip(hits, probabilities)
              if probability is not None and probability >= threshold}
    return ranked[:1] + [hit for hit in ranked[1:] if hit.sentence_id in passed]


def with_selector(selector: Selector, question: str, hits: Sequence[Hit], judged: Judgement,
                  title: Callable[[int], str], candidates: int, passages: int = 1) -> Judgement:
    """The ranker's judgement with the selector's reading of its best `candidates` sentences: each
    read one is lifted by its logit (above the lowest read), and the refusal weighs the best one's
    logit beside the ranker's own probability. The ranker's own scores are kept: quotes widen by them."""
    if not hits:
        return judged
    read = np.argsort(-judged.scores, kind="stable")[:candidates]
    logits = selector.scores(question, [pair_text(title(hits[i].document_id), hits[i].text) for i in read]).astype(np.float64)
    return stacked(selector.calibration, judged, read, logits, passages)


def with_reader(reader: Reader, question: str, hits: Sequence[Hit], judged: Judgement,
                text: Callable[[int], str], sentences: int, passages: int = 1) -> Judgement:
    """The selector's judgement (`judged`) with the passage reader's reading of its best `sentences` sentences
    (the ranker's score plus the selector's lift) with their neighbours: every sentence read is lifted further
    by its score (above the lowest read), and the refusal weighs the best one's score beside the selector's
    probability. The ranker's own scores are kept: quotes widen by them."""
    if not hits:
        return judged
    read, scores = read_best(reader, question, hits, judged, text, sentences)
    return stacked(reader.calibration, judged, read, scores, passages) if len(read) else judged


def read_best(reader: Reader, question: str, hits: Sequence[Hit], judged: Judgement,
              text: Callable[[int], str], sentences: int) -> tuple[np.ndarray, np.ndarray]:
    """The reader's scores of the `sentences` best in the order after the selector and their neighbours:
    the indices into `hits` it read, and their scores."""
    best = np.argsort(-judged.lifted, kind="stable")[:sentences]
    return reader.read(question, hits, best.tolist(), text)


def doubtful(judged: Judgement, margin: float) -> bool:
    """Whether the two best sentences, in the order after the selector, are within `margin` of each other."""
    if len(judged.scores) < 2:
        return False
    best, second = np.sort(judged.lifted)[-1:-3:-1]
    return bool(best - second < margin)


def reordered_by_reader(reader: Reader, question: str, hits: Sequence[Hit], judged: Judgement,
                        text: Callable[[int], str], sentences: int) -> Judgement:
    """The selector's judgement with the passage reader's lifts on its best `sentences` sentences and their
    neighbours: which is quoted first may change; the probability and the evidence stay the selector's."""
    read, scores = read_best(reader, question, hits, judged, text, sentences)
    return lifted_by(reader.calibration, judged, read, scores) if len(read) else judged


def lifted_by(calibration: Calibration, judged: Judgement, read: np.ndarray, logits: np.ndarray) -> Judgement:
    """`judged` with the read candidates (indices `read`, their `logits`) lifted by the calibration's lifts."""
    boosts = list(judged.boosts) if judged.boosts is not None else [None] * len(judged.scores)
    for index, lift in zip(read, calibration.lifts(logits)):
        boosts[index] = (boosts[index] or 0.0) + float(lift)
    return replace(judged, boosts=tuple(boosts))


def stacked(calibration: Calibration, judged: Judgement, read: np.ndarray, logits: np.ndarray, passages: int = 1) -> Judgement:
    """`judged` with the read candidates (indices `read`, their `logits`) lifted further, the stacked refusal
    over its probability and the best read one's logit (on a shelf of `passages`), and each read one's own."""
    lifted = lifted_by(calibration, judged, read, logits)
    best = int(np.argmax(lifted.lifted[read]))
    own = list(judged.probabilities) if judged.probabilities is not None else [None] * len(judged.scores)
    traits = judged.traits[read] if judged.traits is not None else None
    evidence = [calibration.evidence(judged.probability, logits, place, passages, traits) for place in range(len(read))]
    for place, index in enumerate(read):
        own[index] = calibration.probability_of(evidence[place])
    return replace(lifted, probability=own[int(read[best])], probabilities=tuple(own),
                   evidence=tuple(float(x) for x in evidence[best]))


def order(hit: Hit) -> float:
    """What the answer's order follows: the ranker's score (else retrieval's) plus the selector's lift."""
    return hit.order_key + (hit.selected or 0.0)


def rank(
    question: str,
    hits: list[Hit],
    edges_of: Callable[[int], list[Hit]] = lambda document_id: [],
    rank_scores: Sequence[float] | None = None,
    boosts: Sequence[float | None] | None = None,
) -> list[Hit]:
    """The candidates ordered by the ranker's `rank_scores` plus the selector's `boosts` (one per
    hit; None where it did not read), best first; retrieval's own order without them. A question
    about the document itself ("Who wrote this?") puts its byline or title first."""
    if not hits:
        return hits
    ranked = hits
    if rank_scores is not None:
        boosts = boosts if boosts is not None else [None] * len(hits)
        ranked = sorted((replace(hit, rank_score=float(score), selected=lift)
                         for hit, score, lift in zip(hits, rank_scores, boosts)), key=lambda hit: -order(hit))
    about = _about_the_document(question, lambda: edges_of(ranked[0].document_id))
    if about is not None:
        # Its title and byline are what a question about the document itself asks for; they stand
        # at its edges, which the question's words rarely retrieve and no model was shown asked.
        best = ranked[0]
        about = replace(about, score=best.score + 1.0, coverage=best.coverage, about=True)
        ranked = [about, *[hit for hit in ranked if hit.sentence_id != about.sentence_id]]
    return ranked


def _about_the_document(question: str, edges_of: Callable[[], list[Hit]]) -> Hit | None:
    """For "who wrote this?", the document's byline; for "what is it called?", its first line."""
    if _WHAT_IS_IT_CALLED.search(question):
        edges = edges_of()
        return edges[0] if edges else None
    if not _WHO_WROTE_IT.search(question):
        return None
    edges = edges_of()
    bylines = [edge for edge in edges if _BYLINE.fullmatch(edge.text)]
    names = [edge for edge in edges if _NAME.fullmatch(edge.text)]
    # A name line is often followed by the author's note; the last one has it beside it.
    return bylines[0] if bylines else names[-1] if names else None


def _checked_engine(settings: Settings, searcher: Searcher):
    engine = query_engine(settings, searcher.generation, searcher.manifest.engine)
    if engine.embedder.dimension != searcher.manifest.dimension:
        raise IndexMismatch(
            f"the index holds {searcher.manifest.dimension}-dimension vectors but the model makes "
            f"{engine.embedder.dimension}; run `verbatim index build --full`"
        )
    return engine


def check_question(question: str, max_chars: int) -> None:
    """Raise BadQuestion with a helpful message if the question can't be searched."""
    if not question:
        raise BadQuestion("the question is empty: ask something, e.g. \"Who wrote this article?\"")
    if len(question) > max_chars:
        raise BadQuestion(f"the question is {len(question)} characters long; keep it under {max_chars}")
    if not _WORD.search(question):
        raise BadQuestion("the question has no words to search for")


def confidence(ranked: list[Hit]) -> float:
    """Retrieval's own confidence that the best quote answers (score + half coverage + best cosine),
    used when the ranker is off (with it, its probability says instead)."""
    if not ranked:
        return 0.0
    return ranked[0].score + 0.5 * ranked[0].coverage + max(hit.dense for hit in ranked)


def select_quotes(
    ranked: list[Hit], hits: list[Hit], top: int, max_chars: int, document: Callable[[int], tuple[str, tuple[int, ...]]],
    margin: float = math.inf,
) -> list[Quote]:
    """The best ranked hits as quotes: no repeats or near-duplicates, each widened to its best
    neighbouring sentences (any of `hits`) while it stays within `max_chars` (and, where the ranker
    scored them, those it scores no more than `margin` below the quote's own sentence)."""
    by_sentence = {hit.sentence_id: hit for hit in hits} | {hit.sentence_id: hit for hit in ranked}
    used: set[int] = set()
    quotes: list[Quote] = []
    chosen_terms: list[set[str]] = []
    for hit in ranked:
        if len(quotes) == top:
            break
        terms = set(tokenize(hit.text)) or {hit.text}
        if hit.sentence_id in used or any(_similarity(terms, other) >= NEAR_DUPLICATE for other in chosen_terms):
            continue
        if _adds_nothing(hit.text, quotes):
            continue
        text, page_starts = document(hit.document_id)
        window = _widen(hit, by_sentence, used, max_chars, text, margin)
        used.update(member.sentence_id for member in window)
        chosen_terms.append(terms)
        first, last = window[0], window[-1]
        page, line = _page_and_line(text, page_starts, first.start, first.line)
        quotes.append(Quote(text[first.start : last.end], hit.source, first.start, last.end, line, round(hit.score, 4), page))
    return quotes


def _adds_nothing(text: str, quotes: list[Quote]) -> bool:
    """Whether a sentence's words are already shown, in the same order, in one of `quotes` (a repeated
    line, a phrase an earlier quote holds): another quote of it would be filler."""
    words = f" {' '.join(text.split()).casefold()} "
    return any(words in f" {' '.join(quote.text.split()).casefold()} " for quote in quotes)


def _widen(hit: Hit, by_sentence: dict[int, Hit], used: set[int], max_chars: int, text: str, margin: float) -> list[Hit]:
    # Answers often sit in the sentence before or after the one that echoes the
    # question; a neighbour joins when the quote stays short enough to read.
    window = [hit]
    neighbours = [by_sentence.get(hit.sentence_id - 1), by_sentence.get(hit.sentence_id + 1)]
    for neighbour in sorted((n for n in neighbours if n is not None), key=lambda n: -order(n)):
        if neighbour.passage_id != hit.passage_id or neighbour.sentence_id in used:
            continue
        if hit.rank_score is not None and neighbour.rank_score is not None and neighbour.rank_score < hit.rank_score - margin:
            continue  # the ranker all but rules it out: it would only lengthen the quote
        candidate = sorted([*window, neighbour], key=lambda member: member.start)
        after = neighbour.start >= window[-1].end
        gap = text[window[-1].end : neighbour.start] if after else text[neighbour.end : window[0].start]
        if candidate[-1].end - candidate[0].start <= max_chars and not _BLANK_LINE.search(gap):
            window = candidate
    return window


def _page_and_line(text: str, page_starts: tuple[int, ...], start: int, line: int) -> tuple[int | None, int]:
    if not page_starts:
        return None, line
    page = bisect.bisect_right(page_starts, start)
    return page, text.count("\n", page_starts[page - 1], start) + 1


def _similarity(first: set[str], second: set[str]) -> float:
    return len(first & second) / len(first | second)


def _pointer_mtime(index_dir: Path) -> float:
    try:
        return (index_dir / store.CURRENT).stat().st_mtime_ns
    except FileNotFoundError:
        return 0


