"""What an answer is: quotes cut exactly from documents, or a plain refusal."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Quote:
    """`text` is exactly `document_text[start:end]` of `source`; `line` is 1-based
    (for a PDF, the line within `page`, also 1-based)."""

    text: str
    source: str
    start: int
    end: int
    line: int
    score: float
    page: int | None = None

    def citation(self) -> str:
        """`source:line`, or `source, page P, line L` for paged documents (control characters in `source` escaped)."""
        from index.load import printable_name

        # A file name may hold a newline or an escape sequence; the citation must stay one true line.
        if self.page is None:
            return f"{printable_name(self.source)}:{self.line}"
        return f"{printable_name(self.source)}, page {self.page}, line {self.line}"


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

    def to_json(self) -> dict:
        """The stable JSON contract read by other tools."""
        return {
            "question": self.question,
            "answered": self.answered,
            "quotes": [_quote_json(quote) for quote in self.quotes],
            "took_ms": round(self.took_ms, 3),
            **({"closest": _quote_json(self.closest)} if self.closest is not None and not self.answered else {}),
        }


def _quote_json(quote: Quote) -> dict:
    record = asdict(quote)
    if quote.page is None:
        del record["page"]  # only paged documents (PDF) carry it
    return record
