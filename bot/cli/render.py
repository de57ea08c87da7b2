"""Answers as text for people and JSON for machines."""

from __future__ import annotations

import json
from collections.abc import Callable

from bot.types import Answer, Quote

REFUSAL = "The documents don't answer this question."
NOT_SURE = "Not sure this answers it — closest passage:"


# Paints a part of the answer for a terminal: (role, text) -> the text with its style codes
# around it; roles are "citation", "caveat" and "refusal". Quoted text is never painted.
Paint = Callable[[str, str], str]


def unpainted(role: str, text: str) -> str:
    """No style: pipes, files, NO_COLOR."""
    return text


def render_text(answer: Answer, hyperlinks: bool = False, paint: Paint = unpainted) -> str:
    """Each quote as a block quote followed by `source:line`, and its link if it has one:
    a terminal hyperlink on the citation when `hyperlinks`, else the URL after it."""
    stale = f"{stale_line(answer.stale, f'`{answer.rebuild}`')}\n" if answer.stale else ""
    if answer.not_sure and answer.closest is not None:
        return f"{paint('caveat', NOT_SURE)}\n{quote_block(answer.closest, hyperlinks, paint)}\n" + (f"\n{stale}" if stale else "")
    if not answer.answered:
        return paint("refusal", refusal_line(answer)) + "\n" + stale
    return "\n\n".join(quote_block(quote, hyperlinks, paint) for quote in answer.quotes) + "\n" + (f"\n{stale}" if stale else "")


def quote_block(quote: Quote, hyperlinks: bool, paint: Paint = unpainted) -> str:
    """A quote as a block quote, then its citation."""
    quoted = "\n".join("> " + line for line in quote.text.split("\n"))
    return f"{quoted}\n  {paint('citation', '— ' + cited(quote, hyperlinks))}"


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


def stale_line(sources: tuple[str, ...], command: str, named: int = 3) -> str:
    """One line saying the index is out of date: which cited sources changed, and `command` to rebuild it."""
    from index.sources.load import printable_name

    names = ", ".join(printable_name(source) for source in sources[:named])
    if len(sources) > named:
        names += f" and {len(sources) - named} more"
    verb = "changed since it was" if len(sources) == 1 else "changed since they were"
    return f"Index is out of date: {names} {verb} indexed — run {command}"


def render_json(answer: Answer) -> str:
    """One line of JSON in the stable contract."""
    return json.dumps(answer.to_json(), ensure_ascii=False)
