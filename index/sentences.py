"""Paragraphs and sentences as exact character spans of a text.

Nothing here changes a character: every span is a `[start, end)` range of the
original text, trimmed of surrounding white space, so a quote built from spans
is always `text[start:end]`.
"""

from __future__ import annotations

import re

from index.types import Span

_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_LIST_ITEM = re.compile(r"\s*(?:[-*+•]\s|\d{1,3}[.)]\s|#{1,6}\s|>)")
# Sentence-final punctuation, any closing quotes or brackets, then white space.
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s)")
_NEXT_STARTS_SENTENCE = re.compile(r"\s+[\"'“‘«(\[]*[A-Z0-9À-ÖØ-Þ]")
_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st vs mt ft no nos fig figs vol pp gen gov sen rep
    lt col maj capt sgt adm cmdr rev hon inc ltd co corp dept univ approx est
    jan feb mar apr jun jul aug sep sept oct nov dec e.g i.e cf al op""".split()
)
# Lines this long or longer are taken for prose hard-wrapped by an editor.
_WRAP_MIN = 0.6
_WRAP_MAX_WIDTH = 100


def paragraphs(text: str) -> list[Span]:
    """Spans of the paragraphs of `text`: runs of lines between blank lines."""
    spans: list[Span] = []
    position = 0
    for separator in _BLANK_LINE.finditer(text):
        _append_trimmed(spans, text, position, separator.start())
        position = separator.end()
    _append_trimmed(spans, text, position, len(text))
    return spans


def sentences(text: str, within: Span | None = None) -> list[Span]:
    """Spans of the sentences of `text` (or of its range `within`)."""
    area = within or Span(0, len(text))
    spans: list[Span] = []
    for unit in _line_units(text, area):
        spans.extend(_split_unit(text, unit))
    return spans


def _append_trimmed(spans: list[Span], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        spans.append(Span(start, end))


def _line_units(text: str, area: Span) -> list[Span]:
    """Lines that stand alone (lists, bylines, headings), or the whole area if hard-wrapped."""
    lines: list[Span] = []
    position = area.start
    while position < area.end:
        newline = text.find("\n", position, area.end)
        end = area.end if newline == -1 else newline
        _append_trimmed(lines, text, position, end)
        position = end + 1
    if len(lines) <= 1 or _is_hard_wrapped(text, lines):
        return [area]
    return lines


def _is_hard_wrapped(text: str, lines: list[Span]) -> bool:
    widths = [line.end - line.start for line in lines]
    widest = max(widths)
    if widest > _WRAP_MAX_WIDTH:
        return False
    if any(_LIST_ITEM.match(text, line.start) for line in lines[1:]):
        return False
    return all(width >= _WRAP_MIN * widest for width in widths[:-1])


def _split_unit(text: str, unit: Span) -> list[Span]:
    spans: list[Span] = []
    start = unit.start
    for match in _BOUNDARY.finditer(text, unit.start, unit.end):
        end = match.end()
        if end >= unit.end:
            break
        if not _NEXT_STARTS_SENTENCE.match(text, end, unit.end):
            continue
        if _ends_with_abbreviation(text, start, match.start()):
            continue
        _append_trimmed(spans, text, start, end)
        start = end
    _append_trimmed(spans, text, start, unit.end)
    return spans


def _ends_with_abbreviation(text: str, sentence_start: int, period: int) -> bool:
    if text[period] != ".":
        return False
    word_start = period
    while word_start > sentence_start and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:period].lstrip("\"'“‘([").lower()
    if not word:
        return False
    if len(word) == 1 and word.isalpha():
        return True  # an initial, as in "J. Smith"
    return word in _ABBREVIATIONS or ("." in word and len(word) <= 5)
