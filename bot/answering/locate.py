"""Where each quote is: slide, section and a link that opens at it, filled in from the index."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import replace

from bot.types import Answer, Quote
from index.sources.links import file_link, text_fragment
from index.types import Section


def answer_located(answerer, question: str, top: int | None = None, **scope) -> Answer:
    """`answerer.answer(question, top, **scope)` (scope: `sources`, `prefer_sources`) with each quote's location and link."""
    answer = answerer.answer(question, top, **scope)
    return locate(answer, answerer.searcher.document_place, answerer.settings.link_base)


Place = tuple[str, tuple[Section, ...]]


def locate(answer: Answer, place_of: Callable[[str], Place | None], link_base: str | None) -> Answer:
    """`answer` with slide, section and url set on its quotes (and on `closest`); `place_of(source)`
    gives a document's kind and sections (`Searcher.document_place`)."""
    quotes = [*answer.quotes, *([answer.closest] if answer.closest else [])]
    if not quotes:
        return answer
    places = {source: place_of(source) for source in {quote.source for quote in quotes}}
    located = tuple(_located(quote, places[quote.source], link_base) for quote in answer.quotes)
    closest = _located(answer.closest, places[answer.closest.source], link_base) if answer.closest else None
    return replace(answer, quotes=located, closest=closest)


def _located(quote: Quote, place: Place | None, link_base: str | None) -> Quote:
    if place is None:
        return quote
    kind, sections = place
    slide, page = (quote.page, None) if kind == "pptx" else (None, quote.page)
    starts = [section.start for section in sections]
    at = bisect.bisect_right(starts, quote.start) - 1
    section = sections[at].path if at >= 0 else None
    if kind == "web":
        url = text_fragment(quote.source, quote.text)  # a web document is named by its URL
    elif link_base:
        end_line = quote.line + quote.text.count("\n")
        url = file_link(link_base, quote.source, kind, quote.line, end_line, page, quote.text)
    else:
        url = None
    return replace(quote, page=page, slide=slide, section=section, url=url)
