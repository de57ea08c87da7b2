"""Passages: windows of whole sentences that respect paragraph breaks."""

from __future__ import annotations

import bisect
import re
from collections import Counter, defaultdict
from collections.abc import Callable

from index.passages.sentences import paragraphs, sentences
from index.sources.boilerplate import navigation_lines
from index.types import Document, Passage, Span

_WHITESPACE = re.compile(r"\s+")
_NEWLINE = re.compile("\n")
# Repeated text this long is a pull quote (shorter repeats are ordinary phrases).
PULL_QUOTE_CHARS = (40, 600)


def chunk(
    document: Document, max_chars: int, min_chars: int, progress: Callable[[int], None] | None = None
) -> list[Passage]:
    """Split a document into passages of at most `max_chars` (a longer sentence is split at a clause or word).

    Paragraphs shorter than `min_chars` (headings, bylines) join the following
    paragraph; a paragraph repeated verbatim in the document is indexed once.
    `progress`, if given, is called with the number of characters done since its last call.
    """
    text = document.text
    lines = LineIndex(text)
    layout = document.kind == "pdf"
    passages: list[Passage] = []
    done = 0
    for group in _paragraph_groups(text, min_chars):
        group_sentences = [s for paragraph in group for s in _answerable_sentences(text, paragraph, max_chars, layout)]
        for window in _windows(group_sentences, max_chars):
            start, end = window[0].start, window[-1].end
            passages.append(Passage(document.source, start, end, lines.line_of(start), tuple(window)))
        if progress is not None:
            progress(group[-1].end - done)
            done = group[-1].end
    if progress is not None and done < len(text):
        progress(len(text) - done)
    return passages


def _answerable_sentences(text: str, paragraph: Span, max_chars: int, layout: bool) -> list[Span]:
    """The paragraph's sentences less navigation lines ("See more…", lists of other articles)."""
    found = sentences(text, paragraph, max_chars, layout)
    navigation = navigation_lines(text, _lines(text, paragraph))
    if not navigation:
        return found
    return [s for s in found if not any(line.start <= s.start and s.end <= line.end for line in navigation)]


def _lines(text: str, paragraph: Span) -> list[Span]:
    lines, position = [], paragraph.start
    for piece in text[paragraph.start : paragraph.end].split("\n"):
        stripped = piece.strip()
        if stripped:
            start = position + piece.index(stripped)
            lines.append(Span(start, start + len(stripped)))
        position += len(piece) + 1
    return lines


class LineIndex:
    """1-based line numbers of character offsets."""

    def __init__(self, text: str) -> None:
        self._newlines = [match.start() for match in _NEWLINE.finditer(text)]

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self._newlines, offset - 1) + 1


def _paragraph_groups(text: str, min_chars: int) -> list[list[Span]]:
    groups: list[list[Span]] = []
    pending: list[Span] = []
    for paragraph in _unrepeated_paragraphs(text):
        pending.append(paragraph)
        if pending[-1].end - pending[0].start >= min_chars:
            groups.append(pending)
            pending = []
    if pending:
        if groups and pending[-1].end - pending[0].start < min_chars:
            groups[-1].extend(pending)  # a short tail (a signature) joins what precedes it
        else:
            groups.append(pending)
    return groups


def _unrepeated_paragraphs(text: str) -> list[Span]:
    """Paragraphs less repeats: a second copy, or a pull quote that also stands inside a longer paragraph."""
    spans = paragraphs(text)
    keys = [_WHITESPACE.sub(" ", text[span.start : span.end]) for span in spans]
    whole_copies = Counter(keys)
    copies = _occurrences(_WHITESPACE.sub(" ", text), [k for k in whole_copies if PULL_QUOTE_CHARS[0] <= len(k) <= PULL_QUOTE_CHARS[1]])
    seen: set[str] = set()
    kept = []
    for span, key in zip(spans, keys):
        if key in seen:
            continue
        seen.add(key)
        # More copies in the text than whole paragraphs: one stands inside a longer paragraph.
        if copies.get(key, 0) > whole_copies[key]:
            continue
        kept.append(span)
    return kept


def _occurrences(flat: str, keys: list[str]) -> Counter[str]:
    """How often each key (at least PULL_QUOTE_CHARS[0] long) occurs in `flat`, starting at a token.

    One pass over the text: each token start is looked up by its first characters,
    then checked against the few key lengths that share them. (Counting each key
    with `str.count` was quadratic in the number of paragraphs.)
    """
    anchor = PULL_QUOTE_CHARS[0]
    lengths: defaultdict[str, set[int]] = defaultdict(set)
    for key in keys:
        lengths[key[:anchor]].add(len(key))
    wanted = set(keys)
    counts: Counter[str] = Counter()
    if not keys:
        return counts
    for match in _token_starts({key[0] for key in keys}).finditer(flat):
        position = match.start()
        candidates = lengths.get(flat[position : position + anchor])
        if candidates:
            for length in candidates:
                piece = flat[position : position + length]
                if piece in wanted:
                    counts[piece] += 1
    return counts


def _token_starts(first_characters: set[str]) -> re.Pattern[str]:
    """Where a key may start: a word starting with, or punctuation equal to, a key's first character."""
    word = "".join(re.escape(c) for c in sorted(first_characters) if re.match(r"\w", c))
    other = "".join(re.escape(c) for c in sorted(first_characters) if not re.match(r"\w", c))
    alternatives = ([rf"(?<!\w)[{word}]"] if word else []) + ([f"[{other}]"] if other else [])
    return re.compile("|".join(alternatives))


def _windows(spans: list[Span], max_chars: int) -> list[list[Span]]:
    windows: list[list[Span]] = []
    current: list[Span] = []
    for span in spans:
        if current and span.end - current[0].start > max_chars:
            windows.append(current)
            current = []
        current.append(span)
    if current:
        windows.append(current)
    return windows
