"""What an answer is: quotes cut exactly from documents, or a plain refusal."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Quote:
    """`text` is exactly `document_text[start:end]` of `source`; `line` is 1-based."""

    text: str
    source: str
    start: int
    end: int
    line: int
    score: float


@dataclass(frozen=True)
class Answer:
    """The quotes that answer a question, best first; no quotes when `answered` is false."""

    question: str
    answered: bool
    quotes: tuple[Quote, ...]
    took_ms: float

    def to_json(self) -> dict:
        """The stable JSON contract read by other tools."""
        return {
            "question": self.question,
            "answered": self.answered,
            "quotes": [asdict(quote) for quote in self.quotes],
            "took_ms": round(self.took_ms, 3),
        }
