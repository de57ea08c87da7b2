"""Links that open a document at a quote: text fragments for web pages, line and page anchors for files."""

from __future__ import annotations

import re
from urllib.parse import quote as percent_encode

# A quote up to this long (one block) is matched whole; a longer one by its
# first and last words (textStart,textEnd), which keeps links short.
WHOLE_QUOTE_CHARS = 80
EDGE_WORDS = 5
# Kinds whose stored text is the file's own text, line for line.
_LINE_KINDS = {"txt", "md", "rst"}
# Kinds whose stored text is what a browser shows, so a text fragment finds the quote.
_FRAGMENT_KINDS = {"html", "web"}
_BLOCK_BREAK = re.compile(r"\n")


def text_fragment(url: str, quote: str) -> str:
    """`url#:~:text=…` that scrolls a browser to `quote` and highlights it (WICG Text Fragments)."""
    blocks = [block.split() for block in _BLOCK_BREAK.split(quote) if block.split()]
    if not blocks:
        return url
    page = url.split("#", 1)[0]
    # A text directive's start (or whole text) is matched within one block of the
    # page, so a quote over several paragraphs is named by its first and last words.
    if len(blocks) == 1 and len(" ".join(blocks[0])) <= WHOLE_QUOTE_CHARS:
        return f"{page}#:~:text={_directive_value(' '.join(blocks[0]))}"
    first, last = blocks[0], blocks[-1]
    if len(blocks) == 1 and len(first) <= 2 * EDGE_WORDS:
        start, end = first[: len(first) // 2], first[len(first) // 2 :]
    else:
        start, end = first[:EDGE_WORDS], last[-EDGE_WORDS:]
    return f"{page}#:~:text={_directive_value(' '.join(start))},{_directive_value(' '.join(end))}"


def file_link(link_base: str, source: str, kind: str, line: int, end_line: int, page: int | None, quote: str) -> str:
    """A link to a corpus file under `link_base`, opening at the quote where the format allows."""
    url = f"{link_base.rstrip('/')}/{percent_encode(source, safe='/')}"
    if kind == "pdf" and page is not None:
        return f"{url}#page={page}"  # PDF open parameters (RFC 8118)
    if kind in _LINE_KINDS:
        return f"{url}#L{line}" if end_line == line else f"{url}#L{line}-L{end_line}"
    if kind in _FRAGMENT_KINDS:
        return text_fragment(url, quote)
    return url  # Office files and EPUBs open at their start


def _directive_value(text: str) -> str:
    # Everything but unreserved characters is percent-encoded; "-" too, because
    # the spec gives it a meaning (prefix-, -suffix), as it does "," and "&".
    return percent_encode(text, safe="").replace("-", "%2D")
