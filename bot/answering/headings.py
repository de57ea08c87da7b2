"""Headings and label lines are context, not answers: never a quote by themselves.

A heading is a line the loader marks as a section's start (Markdown, reStructuredText, Word,
OpenDocument and HTML headings, slide titles); the citation names it (bot/answering/locate.py). A label is
a short line without a sentence's ending that names what follows ("Wireless network"), as an
HTML page or a plain text file has them. The models still read both (a sentence under
"Car parking" is likelier to be about parking); only the quotes leave them out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from index.search.hybrid import Hit
from index.sources.formats import SECTION_SEPARATOR
from index.types import Section

# A label names a topic in a few words; a longer line without a full stop is more likely content.
LABEL_MAX_WORDS = 6
_ATX_MARKS = re.compile(r"^\s*#{1,6}(?=\s)|\s#+\s*$")
# A line of only punctuation: a setext or reStructuredText underline (or overline).
_RULE = re.compile(r"^\s*([=\-~^*+#_`'\"])\1*\s*$")
# List items and table rows (" | " between cells) are content, whatever their length.
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]\s|\d{1,3}[.)]\s|>)")
_SENTENCE_END = re.compile(r"[.!?…;,][\"'”’»)\]]*$")
# A heading line may be indented this much (Markdown allows three spaces).
_INDENT = 3

Place = tuple[str, tuple[Section, ...]]


def bare(text: str) -> str:
    """A heading line's words without its marks: "## Office hours ##" -> "Office hours"."""
    lines = [_ATX_MARKS.sub("", line) for line in text.splitlines() if not _RULE.match(line)]
    return " ".join(" ".join(lines).split())


def is_label(text: str) -> bool:
    """Whether a sentence is a short label line: one line of a few words, no digits, no sentence's ending."""
    lines = [line for line in text.strip().splitlines() if not _RULE.match(line)]
    if len(lines) != 1 or _LIST_ITEM.match(lines[0]) or " | " in lines[0] or "\t" in lines[0]:
        return False
    words = bare(lines[0]).split()
    # "Opening hours:" heads what follows; "Password: Lobby" is an answer.
    return (0 < len(words) <= LABEL_MAX_WORDS and not _SENTENCE_END.search(words[-1])
            and ":" not in lines[0].rstrip().rstrip(":") and not any(character.isdigit() for character in lines[0]))


def is_heading(hit: Hit, sections: tuple[Section, ...]) -> bool:
    """Whether a sentence is its section's heading: the section starts at it and is named by its words."""
    words = bare(hit.text)
    return bool(words) and any(
        0 <= hit.start - section.start <= _INDENT
        and (section.path == words or section.path.endswith(SECTION_SEPARATOR + words))
        for section in sections
    )


def answers_only(ranked: list[Hit], hits: list[Hit], place_of: Callable[[str], Place | None]) -> tuple[list[Hit], list[Hit]]:
    """`ranked` and `hits` without headings and labels, which then neither lead a quote nor join one as a
    neighbour (the citation names the section). The byline or title put first for a question about the
    document itself (`Hit.about`) stays: it is the answer there."""
    sections_of = cache(lambda source: (place_of(source) or ("", ()))[1])

    def context_only(hit: Hit) -> bool:
        return not hit.about and (is_label(hit.text) or is_heading(hit, sections_of(hit.source)))

    return [hit for hit in ranked if not context_only(hit)], [hit for hit in hits if not context_only(hit)]
