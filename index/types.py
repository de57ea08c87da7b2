"""The frozen records that flow through the indexing pipeline."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Document:
    """A document's decoded text, named by its path relative to the corpus dir."""

    source: str
    text: str
    sha256: str
    kind: str = "txt"
    # Character offsets where each page starts (pdf only); empty otherwise.
    page_starts: tuple[int, ...] = ()
    title: str = ""
    size_bytes: int = 0
    # Where each section (heading path, EPUB chapter, slide title) starts (index/sources/formats.py).
    sections: tuple[Section, ...] = ()
    # The file's mtime when it was found, if it had settled (index.sources.load.settled_mtime); 0: unknown.
    # With size_bytes it lets an answer see that a cited file is unchanged without hashing it.
    mtime_ns: int = 0


@dataclass(frozen=True)
class Section:
    """A titled part of a document, from `start` up to the next section: `path` is
    its heading path ("Setup › Linux"), an EPUB chapter or a slide title."""

    start: int
    path: str


@dataclass(frozen=True)
class Span:
    """A half-open character range `[start, end)` of a document's text."""

    start: int
    end: int


@dataclass(frozen=True)
class Passage:
    """A window of whole sentences of one document; the unit that retrieval ranks."""

    source: str
    start: int
    end: int
    line: int
    sentences: tuple[Span, ...]


@dataclass(frozen=True)
class Skipped:
    """A file the build passed over: `reason` is a short, stable category (see index.sources.load), `detail` the specifics."""

    source: str
    reason: str
    detail: str = ""
    # Not read this time, but still indexed as before (a web page that could not be refreshed):
    # a note for the user, not counted as skipped.
    kept: bool = False

    def describe(self) -> str:
        """The reason with its detail, e.g. "too large (25.0 MB > 20.0 MB limit)"."""
        return f"{self.reason} ({self.detail})" if self.detail else self.reason
