"""Answers as text for people and JSON for machines."""

from __future__ import annotations

import json
from collections.abc import Callable

from bot.types import Answer, Quote

REFUSAL = "The documents don't answer this question."
NOT_SURE = "Not sure this answers it — closest passage:"


def render_text(answer: Answer, hyperlinks: bool = False) -> str:
    """Each quote as a block quote followed by `source:line`, and its link if it has one:
    a terminal hyperlink on the citation when `hyperlinks`, else the URL after it."""
    if answer.not_sure and answer.closest is not None:
        return f"{NOT_SURE}\n{quote_block(answer.closest, hyperlinks)}\n"
    if not answer.answered:
        return refusal_line(answer) + "\n"
    return "\n\n".join(quote_block(quote, hyperlinks) for quote in answer.quotes) + "\n"


def quote_block(quote: Quote, hyperlinks: bool) -> str:
    """A quote as a block quote, then its citation."""
    quoted = "\n".join("> " + line for line in quote.text.split("\n"))
    return f"{quoted}\n  — {cited(quote, hyperlinks)}"


def cited(quote: Quote, hyperlinks: bool) -> str:
    """The quote's citation with its link, if any."""
    if quote.url is None:
        return quote.citation()
    if hyperlinks:
        # OSC 8: terminals that support it show the citation as a link, others just the citation.
        return f"\x1b]8;;{quote.url}\x1b\\{quote.citation()}\x1b]8;;\x1b\\"
    return f"{quote.citation()} <{quote.url}>"


def refusal_line(answer: Answer, cite: Callable[[Quote], str] = Quote.citation) -> str:
    """The refusal, naming the closest passage (as `cite` writes a citation) so the user can check it themselves."""
    if answer.closest is None:
        return REFUSAL
    return f"{REFUSAL} Closest passage: {cite(answer.closest)}"


def render_json(answer: Answer) -> str:
    """One line of JSON in the stable contract."""
    return json.dumps(answer.to_json(), ensure_ascii=False)
