"""Navigation and related-links lines: text a page shows around an article that never answers a question.

Web pages saved as text end in "See more from this Author" and lists of other
articles' headlines. They are left out of the index (the document's text keeps
them, so offsets never change); titles, bylines and author notes stay in.
"""

from __future__ import annotations

import re

from index.types import Span

_NAVIGATION = re.compile(
    r"(see|read|view|show|load) (more|all|next|previous)\b|related (articles?|posts?|stories|topics?)\b|"
    r"(share|subscribe|sign up|log in|follow us|advertisement|cookie|skip to)\b",
    re.I,
)
_WORD = re.compile(r"[^\W\d_][\w’'-]*")
_SMALL_WORDS = frozenset("a an and as at but by for from in into of on or over the to up via with".split())
# A run of this many headline-like lines in a row is a list of links.
HEADLINE_RUN = 2


def navigation_lines(text: str, lines: list[Span]) -> set[Span]:
    """The lines (spans of `text`) that are navigation or a run of other articles' headlines."""
    navigation = {line for line in lines if _NAVIGATION.match(text, line.start) and _is_short(text, line)}
    run: list[Span] = []
    for line in [*lines, None]:
        if line is not None and _is_headline(text[line.start : line.end]):
            run.append(line)
            continue
        if len(run) >= HEADLINE_RUN:
            navigation.update(run)
        run = []
    return navigation


def _is_short(text: str, line: Span) -> bool:
    return line.end - line.start <= 60


def _is_headline(line: str) -> bool:
    """Title Case, at least four words, no sentence-final full stop: a link to another article."""
    words = _WORD.findall(line)
    if len(words) < 4 or line.rstrip().endswith((".", ":", ";", ",")):
        return False
    capitalised = sum(1 for word in words if word[0].isupper() or word.lower() in _SMALL_WORDS)
    return capitalised >= 0.9 * len(words) and any(word[0].isupper() for word in words[1:])
