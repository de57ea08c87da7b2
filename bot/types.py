"""What an answer is: quotes cut exactly from documents, or a plain refusal."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Quote:
    """`text` is exactly `document_text[start:end]` of `source`; `line` is 1-based
    (for a PDF, the line within `page`; for a slide deck, within `slide`)."""

    text: str
    source: str
    start: int
    end: int
    line: int
    score: float
    page: int | None = None
    # Optional locations (bot/answering/locate.py): a slide deck's slide (1-based), the
    # heading path or EPUB chapter the quote is in, and a link that opens at it.
    slide: int | None = None
    section: str | None = None
    url: str | None = None

    def citation(self) -> str:
        """`source:line` (`URL, line L` for a web page), or `source, page P, line L` for paged
        documents (slides alike), followed by the section in parentheses where there is one.
        Control characters in `source` are escaped: a citation stays one true line."""
        from index.sources.load import printable_name

        source = printable_name(self.source)
        if self.slide is not None:
            where = f"{source}, slide {self.slide}, line {self.line}"
        elif self.page is not None:
            where = f"{source}, page {self.page}, line {self.line}"
        elif "://" in source:
            where = f"{source}, line {self.line}"  # a web page: `url:3` would read as a port
        else:
            where = f"{source}:{self.line}"
        return f"{where} ({self.section})" if self.section else where


@dataclass(frozen=True)
class Answer:
    """The quotes that answer a question, best first; no quotes when `answered` is false."""

    question: str
    answered: bool
    quotes: tuple[Quote, ...]
    took_ms: float
    # How sure retrieval is that the documents answer (compared with min_confidence); not in the JSON.
    confidence: float = 0.0
    # On a refusal, where the nearest text is, so the user can check; never shown as an answer.
    closest: Quote | None = None
    # Not answered, but `closest` came near enough to be shown, verbatim, under a caveat.
    not_sure: bool = False
    # What the refusal read (bench/shelves.py fits on it); not in the JSON.
    evidence: tuple[float, ...] = ()

    @property
    def outcome(self) -> str:
        """`answered`, `not_sure` (the closest quote is shown, marked as doubtful) or `refused`."""
        return "answered" if self.answered else "not_sure" if self.not_sure else "refused"
    # Cited sources whose files changed since the index was built (bot/answering/freshness.py): their quotes
    # are shown only where still in the file, and `rebuild` is the command that brings the index up to date.
    stale: tuple[str, ...] = ()
    rebuild: str = ""

    def to_json(self) -> dict:
        """The stable JSON contract read by other tools."""
        return {
            "question": self.question,
            "answered": self.answered,
            "outcome": self.outcome,
            "quotes": [_quote_json(quote) for quote in self.quotes],
            "took_ms": round(self.took_ms, 3),
            **({"closest": _quote_json(self.closest)} if self.closest is not None and not self.answered else {}),
            **({"stale": list(self.stale), "rebuild": self.rebuild} if self.stale else {}),
        }


def _quote_json(quote: Quote) -> dict:
    record = asdict(quote)
    for optional in ("page", "slide", "section", "url"):
        if record[optional] is None:
            del record[optional]  # only documents that have one carry it
    return record
