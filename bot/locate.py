"""Where each quote is: slide, section and a link that opens at it, filled in from the index."""

from __future__ import annotations

import bisect
from contextlib import closing
from dataclasses import replace
from pathlib import Path

from bot.types import Answer, Quote
from index import store
from index.links import file_link, text_fragment
from index.types import Section


def answer_located(answerer, question: str, top: int | None = None) -> Answer:
    """`answerer.answer(question)` with each quote's location and link."""
    answer = answerer.answer(question, top)
    return locate(answer, answerer.searcher.generation, answerer.settings.link_base)


def locate(answer: Answer, generation: Path, link_base: str | None) -> Answer:
    """`answer` with slide, section and url set on its quotes (and on `closest`)."""
    quotes = [*answer.quotes, *([answer.closest] if answer.closest else [])]
    if not quotes:
        return answer
    places: dict[str, tuple[str, tuple[Section, ...]] | None] = {}
    with closing(store.open_metadata(generation)) as connection:
        for source in {quote.source for quote in quotes}:
            row = connection.execute("SELECT id, kind FROM documents WHERE source = ?", (source,)).fetchone()
            places[source] = (row[1], store.document_sections(connection, row[0])) if row else None
    located = tuple(_located(quote, places[quote.source], link_base) for quote in answer.quotes)
    closest = _located(answer.closest, places[answer.closest.source], link_base) if answer.closest else None
    return replace(answer, quotes=located, closest=closest)


def _located(quote: Quote, place: tuple[str, tuple[Section, ...]] | None, link_base: str | None) -> Quote:
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
