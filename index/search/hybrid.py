"""Search a built index: hybrid (dense + BM25) passage retrieval, then sentence scoring."""

from __future__ import annotations

import fnmatch
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from config import Settings
from index.errors import DocumentNotIndexed, IndexCorrupt, IndexMismatch
from index.notice import warn
from index.search.lexical import K1, LexicalIndex, tokenize
from index.storage import ann, store
from index.types import Section

QueryEmbedder = Callable[[str], np.ndarray]

_ASKS_FOR_NUMBER = re.compile(r"\b(how (many|much|long|old|far|large|big)|what (year|percentage|percent)|when)\b", re.I)
_HAS_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|"
    r"thousand|million|billion|dozen|half)\b",
    re.I,
)


_HOW_MANY = re.compile(r"\bhow many (\w+(?: \w+)?)", re.I)
_NUMBER_THEN_WORDS = re.compile(
    r"(?:\d[\d,.]*|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|hundred|thousand|million|billion)\b)"
    r"((?:\W+\w+){1,3})",
    re.I,
)


@dataclass(frozen=True)
class Weights:
    """How the retrieval signals are mixed (defaults measured with bench/training/tune.py and `verbatim eval`)."""

    passage_dense: float = 0.4
    sentence_dense: float = 0.6
    sentence_lexical: float = 0.7
    sentence_passage: float = 0.6
    answer_type: float = 0.2
    counted_noun: float = 0.3


@dataclass(frozen=True)
class Hit:
    """A candidate sentence: its exact place in a document, how well it matches, and why."""

    source: str
    start: int
    end: int
    line: int
    text: str
    score: float
    passage_id: int
    sentence_id: int
    document_id: int
    dense: float = 0.0
    lexical: float = 0.0
    passage: float = 0.0
    coverage: float = 0.0
    passage_dense: float = 0.0
    passage_lexical: float = 0.0
    # How far the answer selector lifts this sentence above the ranker's score, where it read it
    # (bot/answering/answer.py: with_selector); the order follows rank_score + selected.
    selected: float | None = None
    # Put first by rule: the byline or title, for a question about the document itself.
    about: bool = False
    # The sentence's place in its passage (0: the passage's first sentence).
    order: int = 0
    # The learned ranker's score, where it ordered the candidates (bot/answering/ranker.py); `score` stays retrieval's.
    rank_score: float | None = None

    @property
    def order_key(self) -> float:
        """What the answer's order follows: the ranker's score where it ranked, else `score`."""
        return self.score if self.rank_score is None else self.rank_score


@dataclass(frozen=True)
class _Query:
    text: str
    vector: np.ndarray
    term_weights: dict[str, float]
    total_weight: float
    asks_for_number: bool
    counted: frozenset[str]

    def overlap(self, terms: set[str]) -> float:
        """The idf-weighted share of the question's terms found in `terms`."""
        return sum(w for term, w in self.term_weights.items() if term in terms) / self.total_weight


@dataclass(frozen=True)
class _PassageScore:
    combined: float
    dense: float
    lexical: float


# The document cache holds at most this many characters of text in all (a
# document can be 20 MB): enough for the documents behind many answers.
DOCUMENT_CACHE_CHARS = 16_000_000
# A scoped search reads its documents' passage vectors this many at a time (~100 MB as float32 at 384 dimensions).
VECTORS_AT_ONCE = 65_536
SQL_VARIABLES_AT_ONCE = 500


class Searcher:
    """An open index generation, ready to answer many queries.

    A generation whose files fail their checksums is not used: the previous
    intact generation answers instead, with a warning, until a build replaces it.
    """

    def __init__(
        self, settings: Settings, embed_query: QueryEmbedder, weights: Weights | None = None,
        document_cache_chars: int = DOCUMENT_CACHE_CHARS,
    ) -> None:
        self.weights = weights or Weights()
        self._embed_query = embed_query
        self._candidates = settings.candidate_passages
        self._documents: OrderedDict[int, tuple[str, tuple[int, ...]]] = OrderedDict()
        self._documents_chars = 0
        self._document_cache_chars = document_cache_chars
        self._documents_lock = threading.Lock()
        self._titles: dict[int, str] = {}
        try:
            current = store.current_generation(settings.index_dir)
        except IndexCorrupt as damage:  # a pointer to nothing: the newest intact generation may still serve
            self._open_fallback(settings, None, damage)
            return
        try:
            self._open(current, settings)
        except IndexCorrupt as damage:
            self._open_fallback(settings, current.name, damage)

    def _open(self, generation, settings: Settings) -> None:
        manifest = store.Manifest.read(generation)
        check_compatible(manifest, settings)
        # Checksums are verified beside the loads that follow (hashing releases
        # the GIL), and awaited before anything else, such as the ONNX model in
        # this generation, is loaded from it.
        verification = Background(store.verify, generation, manifest)
        try:
            passage_vectors = ann.RowReader(generation / store.PASSAGE_VECTORS_NPY)
            faiss_index = ann.open_passage_index(generation, manifest, settings, passage_vectors)
            sentence_vectors = ann.open_sentence_vectors(generation, manifest)
            lexical = LexicalIndex.load(generation)
        except (OSError, RuntimeError, ValueError) as error:
            verification.result()  # a checksum verdict names the damaged file best
            raise IndexCorrupt(f"cannot read index {generation}: {error}; run `verbatim index build --full`") from error
        verification.result()
        self.generation, self.manifest, self._verification = generation, manifest, verification
        self._faiss, self._passage_vectors, self._sentence_vectors, self._lexical = (
            faiss_index, passage_vectors, sentence_vectors, lexical)
        self._rarest_idf = float(lexical.idf.max()) if lexical.idf.size else 1.0
        self._metadata = store.open_metadata(generation)

    def _open_fallback(self, settings: Settings, damaged: str | None, damage: IndexCorrupt) -> None:
        for generation in store.fallback_generations(settings.index_dir, damaged):
            try:
                self._open(generation, settings)
            except (IndexCorrupt, IndexMismatch):
                continue
            # The damage names its own remedy (`index build --full`): say it once, at the end.
            reason = str(damage).split("; run `")[0]
            warn(f"the live index is damaged: {reason}; answering from the previous intact index {generation.name} "
                 f"(built {self.manifest.built_at}) until `verbatim index build --full` replaces it")
            return
        raise damage

    def search(self, question: str, documents: Sequence[int] | None = None) -> list[Hit]:
        """Every sentence of the best passages, best first; only those of `documents` (ids) if given."""
        self._verification.result()
        if self.manifest.passages == 0:
            return []
        query = self._query(question)
        if documents is None:
            return self._score_sentences(query, self._score_passages(query))
        return self._score_sentences(query, self._score_passages_within(query, documents))

    def matching_documents(self, patterns: Sequence[str]) -> list[int]:
        """Ids of the documents whose source equals or matches (fnmatch) any of `patterns`; a pattern
        without a "/" also matches a file name in any folder. DocumentNotIndexed if a pattern matches none."""
        rows = self._metadata.execute("SELECT id, source FROM documents ORDER BY id").fetchall()
        chosen: set[int] = set()
        for pattern in patterns:
            matched = {document_id for document_id, source in rows if _source_matches(source, pattern)}
            if not matched:
                raise DocumentNotIndexed(
                    f"no document matches {pattern!r}: give its path in the corpus as citations show it (a web page "
                    "by its URL), or a pattern, e.g. 'guide.md', 'reports/*.pdf' or '*.docx'"
                )
            chosen |= matched
        return sorted(chosen)

    def document_text(self, document_id: int) -> str:
        """The full indexed text of a document."""
        return self.document(document_id)[0]

    def document(self, document_id: int) -> tuple[str, tuple[int, ...]]:
        """A document's indexed text and page starts (recent documents are cached, up to a total size)."""
        with self._documents_lock:  # questions are answered from several threads at once (Discord)
            record = self._documents.get(document_id)
            if record is not None:
                self._documents.move_to_end(document_id)
                return record
        text, page_starts = self._metadata.execute(
            "SELECT text, page_starts FROM documents WHERE id = ?", (document_id,)
        ).fetchone()
        record = (text, tuple(int(p) for p in page_starts.split(",") if p))
        if len(text) > self._document_cache_chars:
            return record  # it would push out every other document
        with self._documents_lock:
            if document_id not in self._documents:
                self._documents[document_id] = record
                self._documents_chars += len(text)
            while self._documents_chars > self._document_cache_chars:
                _, (evicted, _) = self._documents.popitem(last=False)
                self._documents_chars -= len(evicted)
        return record

    def document_title(self, document_id: int) -> str:
        """A short title for a document: its own when it has one, else its file name."""
        title = self._titles.get(document_id)
        if title is None:
            source, stored = self._metadata.execute(
                "SELECT source, title FROM documents WHERE id = ?", (document_id,)
            ).fetchone()
            title = context_title(source, stored)
            if len(self._titles) > 4096:
                self._titles.clear()
            self._titles[document_id] = title
        return title

    def document_edges(self, document_id: int, count: int = 3) -> list[Hit]:
        """The first and last `count` sentences of a document (title, byline, author note), unscored."""
        rows = self._metadata.execute(
            "SELECT * FROM (SELECT s.id, s.passage_id, s.document_id, d.source, s.start, s.end, s.line "
            "FROM sentences s JOIN documents d ON d.id = s.document_id WHERE s.document_id = ? ORDER BY s.id LIMIT ?) "
            "UNION SELECT * FROM (SELECT s.id, s.passage_id, s.document_id, d.source, s.start, s.end, s.line "
            "FROM sentences s JOIN documents d ON d.id = s.document_id WHERE s.document_id = ? ORDER BY s.id DESC LIMIT ?)",
            (document_id, count, document_id, count),
        ).fetchall()
        text = self.document_text(document_id)
        return [
            Hit(source, start, end, line, text[start:end], 0.0, passage_id, sentence_id, document_id)
            for sentence_id, passage_id, document_id, source, start, end, line in sorted(rows)
        ]
    def cached_document_chars(self) -> int:
        """How many characters of document text the cache holds now."""
        with self._documents_lock:
            return self._documents_chars

    def document_place(self, source: str) -> tuple[str, tuple[Section, ...]] | None:
        """A document's kind and sections (where its headings, chapters or slides start), or None."""
        row = self._metadata.execute("SELECT id, kind FROM documents WHERE source = ?", (source,)).fetchone()
        return (row[1], store.document_sections(self._metadata, row[0])) if row else None

    def list_documents(self, contains: str = "", offset: int = 0, limit: int = 25) -> list[tuple[str, str]]:
        """(source, title) of indexed documents whose source contains `contains`, by source."""
        pattern = "%" + contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return self._metadata.execute(
            "SELECT source, title FROM documents WHERE source LIKE ? ESCAPE '\\' ORDER BY source LIMIT ? OFFSET ?",
            (pattern, limit, offset),
        ).fetchall()

    def document_info(self, source: str) -> dict | None:
        """Title, kind, size, passages and indexing time of one document, or None."""
        row = self._metadata.execute(
            "SELECT d.id, d.title, d.kind, d.bytes, d.chars, d.indexed_at, "
            "(SELECT COUNT(*) FROM passages p WHERE p.document_id = d.id) FROM documents d WHERE d.source = ?",
            (source,),
        ).fetchone()
        if row is None:
            return None
        keys = ("id", "title", "kind", "bytes", "chars", "indexed_at", "passages")
        return {"source": source, **dict(zip(keys, row))}

    def close(self) -> None:
        """Release the metadata connection."""
        self._metadata.close()

    def _query(self, question: str) -> _Query:
        vector = np.asarray(self._embed_query(question), dtype=np.float32).reshape(-1)
        terms = set(tokenize(question))
        # A term the corpus never uses is the strongest sign it can't answer:
        # weigh it like the rarest term, so coverage drops when it is missing.
        term_weights = {term: self._lexical.term_idf(term) or self._rarest_idf for term in terms}
        total = sum(term_weights.values()) or 1.0
        how_many = _HOW_MANY.search(question)
        counted = frozenset(tokenize(how_many.group(1))) if how_many else frozenset()
        return _Query(question, vector, term_weights, total, bool(_ASKS_FOR_NUMBER.search(question)), counted)

    def _score_passages(self, query: _Query) -> dict[int, _PassageScore]:
        k = min(self._candidates, self.manifest.passages)
        dense_scores, dense_ids = self._faiss.search(query.vector.reshape(1, -1), k)
        dense = {int(i): float(s) for i, s in zip(dense_ids[0], dense_scores[0]) if i >= 0}
        lexical = self._lexical_scores(query)
        lexical_top = np.argpartition(-lexical, k - 1)[:k] if k < lexical.size else np.arange(lexical.size)
        candidates = set(dense) | {int(i) for i in lexical_top if lexical[i] > 0}
        weight = self.weights.passage_dense
        scores = {}
        for passage_id in candidates:
            cosine = dense.get(passage_id)
            if cosine is None:
                cosine = float(np.asarray(self._passage_vectors[passage_id], dtype=np.float32) @ query.vector)
            lexical_score = float(lexical[passage_id])
            scores[passage_id] = _PassageScore(weight * cosine + (1 - weight) * lexical_score, cosine, lexical_score)
        return dict(sorted(scores.items(), key=lambda item: -item[1].combined)[:k])

    def _score_passages_within(self, query: _Query, documents: Sequence[int]) -> dict[int, _PassageScore]:
        """The best passages of `documents`, all of them scored: not the global best filtered, which
        a small document among many large ones would rarely reach."""
        passage_ids = np.array(sorted(self._passages_of(documents)), dtype=np.int64)
        if not passage_ids.size:
            return {}
        # In slices, so that a pattern matching most of a large index never holds all its vectors as float32 at once.
        cosines = np.concatenate([
            np.asarray(self._passage_vectors[passage_ids[at : at + VECTORS_AT_ONCE]], dtype=np.float32) @ query.vector
            for at in range(0, passage_ids.size, VECTORS_AT_ONCE)
        ])
        lexical = self._lexical_scores(query)[passage_ids]
        weight = self.weights.passage_dense
        combined = weight * cosines + (1 - weight) * lexical
        best = np.argsort(-combined, kind="stable")[: self._candidates]
        return {int(passage_ids[i]): _PassageScore(float(combined[i]), float(cosines[i]), float(lexical[i])) for i in best}

    def _passages_of(self, documents: Sequence[int]) -> set[int]:
        passages: set[int] = set()
        for at in range(0, len(documents), SQL_VARIABLES_AT_ONCE):  # SQLite limits the variables of one statement
            chunk = list(documents[at : at + SQL_VARIABLES_AT_ONCE])
            rows = self._metadata.execute(
                f"SELECT DISTINCT passage_id FROM sentences WHERE document_id IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall()
            passages.update(row[0] for row in rows)
        return passages

    def _lexical_scores(self, query: _Query) -> np.ndarray:
        """BM25 of every passage on a 0..1 scale: divided by what a passage matching every term strongly would score."""
        best_possible = sum(w for t, w in query.term_weights.items() if self._lexical.term_idf(t)) * (K1 + 1)
        return self._lexical.scores(list(query.term_weights)) / (best_possible or 1.0)

    def _score_sentences(self, query: _Query, passages: dict[int, _PassageScore]) -> list[Hit]:
        placeholders = ",".join("?" * len(passages))
        rows = self._metadata.execute(
            "SELECT s.id, s.passage_id, s.document_id, d.source, s.start, s.end, s.line "
            f"FROM sentences s JOIN documents d ON d.id = s.document_id WHERE s.passage_id IN ({placeholders}) "
            "ORDER BY s.id",
            list(passages),
        ).fetchall()
        if not rows:
            return []
        sentence_ids = [row[0] for row in rows]
        cosines = np.asarray(self._sentence_vectors[sentence_ids], dtype=np.float32) @ query.vector
        texts = [self.document_text(row[2])[row[4] : row[5]] for row in rows]
        passage_terms: dict[int, set[str]] = {}
        sentence_terms = [set(tokenize(text)) for text in texts]
        for row, terms in zip(rows, sentence_terms):
            passage_terms.setdefault(row[1], set()).update(terms)
        coverage = {passage_id: query.overlap(terms) for passage_id, terms in passage_terms.items()}
        w = self.weights
        hits = []
        first_of_passage: dict[int, int] = {}
        for (sentence_id, passage_id, document_id, source, start, end, line), text, terms, cosine in zip(
            rows, texts, sentence_terms, cosines.tolist()
        ):
            order = sentence_id - first_of_passage.setdefault(passage_id, sentence_id)
            lexical = query.overlap(terms)
            passage = passages[passage_id]
            typed = w.answer_type if query.asks_for_number and _HAS_NUMBER.search(text) else 0.0
            if query.counted and _counts(text, query.counted):
                typed += w.counted_noun
            score = w.sentence_dense * cosine + w.sentence_lexical * lexical + w.sentence_passage * passage.combined + typed
            hits.append(Hit(
                source, start, end, line, text, score, passage_id, sentence_id, document_id,
                cosine, lexical, passage.combined, coverage[passage_id],
                passage.dense, passage.lexical, order=order,
            ))
        hits.sort(key=lambda hit: -hit.score)
        return hits


def context_title(source: str, title: str) -> str:
    """The document's title where it has a real one (a heading, HTML or PDF title); otherwise its
    file name, since a plain text's "title" is just its first line, often a whole sentence."""
    title = " ".join(title.split())
    if title and len(title) <= 100 and not title.endswith((".", "!", "?", ":")):
        return title
    stem = source.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return re.sub(r"[_\s]+", " ", stem).strip()


def _source_matches(source: str, pattern: str) -> bool:
    if source == pattern or fnmatch.fnmatchcase(source, pattern):
        return True
    return "/" not in pattern and fnmatch.fnmatchcase(source.rsplit("/", 1)[-1], pattern)


def _counts(text: str, nouns: frozenset[str]) -> bool:
    """Whether a number in `text` counts one of `nouns` ("3,500 troops" for "how many troops")."""
    return any(nouns & set(tokenize(match.group(1))) for match in _NUMBER_THEN_WORDS.finditer(text))


class Background:
    """Runs a function in a thread; `result()` waits for its value and re-raises its exception."""

    def __init__(self, function: Callable[..., object], *arguments: object) -> None:
        self._error: BaseException | None = None
        self._value: object = None
        self._thread = threading.Thread(target=self._run, args=(function, *arguments), daemon=True)
        self._thread.start()

    def _run(self, function: Callable[..., object], *arguments: object) -> None:
        try:
            self._value = function(*arguments)
        except BaseException as error:  # handed to the caller of result()
            self._error = error

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


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
