"""Answers as Discord embeds, within Discord's limits, with quoted text escaped.

Pure functions over `Answer`, so the limits and escaping are tested without a
gateway. A quote is never cut to fit: fewer quotes are shown instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import discord

from bot.cli.render import NOT_SURE, refusal_line, stale_line
from bot.types import Answer, Quote

TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
FIELDS_MAX = 25
EMBED_TOTAL_MAX = 6000
MESSAGE_MAX = 2000
# A citation shown in running text (a path can be 4,096 characters long).
CITATION_MAX = 500

CONFIDENT = discord.Colour.green()
TENTATIVE = discord.Colour.gold()
REFUSED = discord.Colour.light_grey()
# "Not sure": neutral, unlike an answer's green or gold, and unlike a refusal's grey.
NOT_SURE_COLOUR = discord.Colour.blurple()
SCORE_BAR_LOW = 0.8
# What the bar under each quote means, said once in the footer.
SCORE_BAR_LEGEND = "▰ strength of the match"


def safe(text: str) -> str:
    """Document text made inert: no markdown, no mentions (links stay clickable)."""
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text, as_needed=False, ignore_links=True))


# The rest of a path: path characters, not ending on punctuation.
_PATH_TAIL = r"(?:[^\s'\"`<>()]*[^\s'\"`<>().,:;!?])?"
# An absolute path: a slash not inside a word or URL, then the rest.
_ABSOLUTE_PATH = r"(?<![\w:/.~-])~?/" + _PATH_TAIL


def without_paths(text: str, settings) -> str:
    """An error message fit for Discord: the server's paths (settings' and any absolute one) become "…"."""
    known = set()
    for path in (settings.corpus_dir, settings.index_dir, settings.cache_path, settings.feedback_db):
        known |= {str(Path(path)), str(Path(path).resolve())} - {"", "."}
    named = [re.escape(path) + _PATH_TAIL for path in sorted(known, key=len, reverse=True)]
    return re.sub("|".join(named + [_ABSOLUTE_PATH]), "…", text)


def fit(text: str, limit: int) -> str:
    """`safe(text)` in at most `limit` characters: clipped with "…" before an escape, never inside one."""
    shown = safe(text)
    if len(shown) <= limit:
        return shown
    keep = limit - 1
    while keep > 0 and len(shown := safe(text[:keep])) > limit - 1:
        keep -= max(1, len(shown) - (limit - 1))
    return safe(text[:keep]) + "…"


def code_span(text: str, limit: int = 200) -> str:
    """`text` as inline code, in at most `limit` characters.

    Code spans show their content literally, so nothing inside is escaped; the span is always closed.
    """
    text = text.replace("\n", " ")
    if "``" in text:
        text = text.replace("`", "\u02cb")  # a look-alike: no fence can hold a run of backticks
    fence, pad = ("``", " ") if "`" in text else ("`", "")
    room = limit - 2 * (len(fence) + len(pad))
    return f"{fence}{pad}{clip(text, room)}{pad}{fence}"


def block_quote(text: str) -> str:
    """Escaped text as a Discord block quote, every line prefixed."""
    return "\n".join("> " + line if line.strip() else ">" for line in safe(text).split("\n"))


def score_bar(score: float) -> str:
    """Five blocks: one for a quote scoring 0.8 or less (weak), five from 1.8 (strong)."""
    filled = max(1, min(5, 1 + round((score - SCORE_BAR_LOW) * 4)))
    return "▰" * filled + "▱" * (5 - filled)


def answer_embed(answer: Answer, confident_above: float) -> discord.Embed:
    """The embed for an answer or a refusal."""
    title = clip(answer.question, TITLE_MAX)
    footer = f"{answer.took_ms:.0f} ms · quoted word for word, nothing paraphrased"
    # The bot's own /reindex rebuilds the shelf: no server path or shell command is shown in Discord.
    stale = stale_line(answer.stale, "/reindex (admins)") if answer.stale else ""
    if answer.not_sure and answer.closest is not None:
        return not_sure_embed(answer, title, footer, stale)
    if not answer.answered:
        # The closest passage is named so people can check, never quoted as if it answered.
        refusal = refusal_line(answer, shown_citation) + (f"\n{stale}" if stale else "")
        embed = discord.Embed(title=title, description=fit(refusal, DESCRIPTION_MAX), colour=REFUSED)
        embed.set_footer(text=f"{answer.took_ms:.0f} ms")  # nothing was quoted
        return embed
    sure = answer.confidence >= confident_above
    # The note goes first, so the quotes that fit are counted with it.
    note = fit(stale, 500) if stale else ""
    embed = discord.Embed(title=title, description=note or None, colour=CONFIDENT if sure else TENTATIVE)
    embed.set_footer(text=f"{footer} · {SCORE_BAR_LEGEND}")  # counted in the embed's total as fields are added
    for quote in answer.quotes:
        if len(embed.fields) == FIELDS_MAX:
            break
        name = clip(shown_citation(quote), FIELD_NAME_MAX)
        link = source_link(quote)
        value = f"{block_quote(quote.text)}\n{link + ' · ' if link else ''}{score_bar(quote.score)}"
        if len(value) > FIELD_VALUE_MAX or len(embed) + len(name) + len(value) > EMBED_TOTAL_MAX:
            continue  # never cut a quote: show fewer
        embed.add_field(name=name, value=value, inline=False)
    if not embed.fields:
        embed.set_footer(text=footer)  # no bar shown
        # Even the best quote is too long for a field: give it the description alone, or say so.
        quote = answer.quotes[0]
        citation = fit(shown_citation(quote), CITATION_MAX)
        text = block_quote(quote.text) + f"\n— **{citation}** {source_link(quote)}".rstrip()
        room = DESCRIPTION_MAX - (len(note) + 2 if note else 0)
        text = text if len(text) <= room else (
            f"The best passage is too long to show here; see {citation} {source_link(quote)}".rstrip()
        )
        embed.description = f"{note}\n\n{text}" if note else text
    return embed


def not_sure_embed(answer: Answer, title: str, footer: str, stale: str = "") -> discord.Embed:
    """The closest passage, verbatim, under a plain caveat; named only if it is too long to show."""
    quote = answer.closest
    citation = fit(shown_citation(quote), CITATION_MAX)
    note = f"\n{fit(stale, 500)}" if stale else ""
    text = f"{NOT_SURE}\n{block_quote(quote.text)}\n— **{citation}** {source_link(quote)}".rstrip() + note
    if len(text) > DESCRIPTION_MAX:
        text = f"{NOT_SURE} {citation} {source_link(quote)} (too long to show here)".rstrip() + note
    embed = discord.Embed(title=title, description=text, colour=NOT_SURE_COLOUR)
    embed.set_footer(text=footer)
    return embed


def shown_citation(quote: Quote) -> str:
    """Where a quote is from, as Discord shows it: a file's citation as on the command line; a web page's
    host and section, with no line number (its lines are the extracted text's, not the page's; the link opens it)."""
    if "://" not in quote.source or quote.page is not None or quote.slide is not None:
        return quote.citation()
    host = urlsplit(quote.source).hostname or quote.source
    return f"{host} ({quote.section})" if quote.section else host


def source_link(quote: Quote) -> str:
    """The quote's source as a markdown link that opens at the quote, or nothing without a URL."""
    if quote.url is None:
        return ""
    name = safe(quote.source.rsplit("/", 1)[-1] or quote.source).replace("[", "(").replace("]", ")")
    # Parentheses would end the link early; percent-encoded they mean the same URL.
    url = quote.url.replace("(", "%28").replace(")", "%29").replace(" ", "%20")
    return f"[{name}]({url})"


def context_text(quote: Quote, document_text: str, around: int = 300) -> str:
    """The passage around a quote, the quote in bold, within a message's limit."""
    citation = f"**{fit(shown_citation(quote), CITATION_MAX)}**"
    while True:
        before = document_text[max(0, quote.start - around) : quote.start]
        after = document_text[quote.end : quote.end + around]
        text = f"{citation}\n…{safe(before)}**{safe(quote.text)}**{safe(after)}…"
        if len(text) <= MESSAGE_MAX or around == 0:
            return text if len(text) <= MESSAGE_MAX else f"{citation}: too long to show in Discord."
        around //= 2


def clip(text: str, limit: int) -> str:
    """Plain text in at most `limit` characters, "…" at a cut: for titles and names, never for quotes."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
