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
# A line at least this fraction of the paragraph's widest line is "full": the
# text runs on into the next line, as in prose hard-wrapped by an editor or laid
# out on a PDF page. A shorter line (a heading, a byline, a paragraph's last
# line) ends its unit.
_WRAP_MIN = 0.6
# In plain text, lines wider than this are whole paragraphs on one line, not wrapped.
_WRAP_MAX_WIDTH = 100
# Where an overlong sentence may be split: after a clause mark, else at white space.
_CLAUSE_END = re.compile(r"[;:,)\]]+(?=\s)|\s[-–—]+(?=\s)")


def paragraphs(text: str) -> list[Span]:
    """Spans of the paragraphs of `text`: runs of lines between blank lines."""
    spans: list[Span] = []
    position = 0
    for separator in _BLANK_LINE.finditer(text):
        _append_trimmed(spans, text, position, separator.start())
        position = separator.end()
    _append_trimmed(spans, text, position, len(text))
    return spans


def sentences(text: str, within: Span | None = None, max_chars: int | None = None, layout: bool = False) -> list[Span]:
    """Spans of the sentences of `text` (or of its range `within`), none longer than `max_chars`.

    `layout` says lines are a page layout's (PDF), so full lines always run on.
    """
    area = within or Span(0, len(text))
    spans: list[Span] = []
    for unit in _line_units(text, area, layout):
        for sentence in _split_unit(text, unit):
            if max_chars is None or sentence.end - sentence.start <= max_chars:
                spans.append(sentence)
            else:
                _split_overlong(spans, text, sentence, max_chars)
    return spans


def _append_trimmed(spans: list[Span], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        spans.append(Span(start, end))


def _line_units(text: str, area: Span, layout: bool) -> list[Span]:
    """Runs of wrapped lines, and lines that stand alone (lists, bylines, headings)."""
    lines: list[Span] = []
    position = area.start
    while position < area.end:
        newline = text.find("\n", position, area.end)
        end = area.end if newline == -1 else newline
        _append_trimmed(lines, text, position, end)
        position = end + 1
    if len(lines) <= 1:
        return [area]
    widest = max(line.end - line.start for line in lines)
    if widest > _WRAP_MAX_WIDTH and not layout:
        return lines
    units: list[Span] = []
    start = lines[0]
    for previous, line in zip(lines, lines[1:]):
        runs_on = previous.end - previous.start >= _WRAP_MIN * widest and not _LIST_ITEM.match(text, line.start)
        if not runs_on:
            units.append(Span(start.start, previous.end))
            start = line
    units.append(Span(start.start, lines[-1].end))
    return units


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


def _split_overlong(spans: list[Span], text: str, sentence: Span, max_chars: int) -> None:
    """Cut a run longer than `max_chars` after its last clause mark or space in each window."""
    start, end = sentence.start, sentence.end
    while end - start > max_chars:
        limit = start + max_chars
        cut = None
        # A clause mark in the window's second half, so that pieces stay long enough to read.
        for match in _CLAUSE_END.finditer(text, start + max_chars // 2, limit):
            cut = match.end()
        if cut is None:
            space = max(text.rfind(" ", start + 1, limit + 1), text.rfind("\n", start + 1, limit + 1))
            cut = space if space > start else limit  # one unbroken token: cut it at the limit
        _append_trimmed(spans, text, start, cut)
        start = cut
        while start < end and text[start].isspace():
            start += 1
    _append_trimmed(spans, text, start, end)
