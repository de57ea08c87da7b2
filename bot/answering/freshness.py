"""Whether an answer's quotes are still what their files say, checked just before it is shown.

A cited file whose size and mtime are what the index recorded is taken as unchanged, as make and
git do: one stat() per cited file. Otherwise its bytes are hashed, and only when the hash differs
is its text read again exactly as a build reads it (index.sources.load.read_document: decoded for .txt
and .md, extracted for PDF, Office, EPUB and HTML; slow for a big PDF, but only when it really
changed, and once per version of the file). A quote still in that text keeps its offsets, or moves
to where the same characters now are (the occurrence nearest its old place); one that is not is
withheld. A web page is checked against its stored copy (web.sqlite), never fetched.

Not caught: a file rewritten with the same size and mtime (`touch -r`, some copies that keep
times) - as for make and git. An mtime recorded within SETTLE_NS of the build is never trusted.
"""

from __future__ import annotations

import bisect
import os
import shlex
import stat
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bot.types import Quote
from config import Settings
from config.settings import default_index_dir
from index.errors import Unreadable
from index.sources import web
from index.sources.load import CorpusFile, read_document, regular_file_sha256, settled_mtime
from index.storage import store

# Texts of changed files kept for the next questions: re-extracting a big PDF at every answer would be slow.
_CURRENT_TEXTS_KEPT = 8


@dataclass(frozen=True)
class Checked:
    """The quotes that still hold (moved where their text moved), and the cited sources that changed."""

    quotes: tuple[Quote, ...]
    stale: tuple[str, ...]


@dataclass(frozen=True)
class _Current:
    """A changed document's text now, with its page starts; `text` None: it is gone or can't be read."""

    text: str | None
    page_starts: tuple[int, ...] = ()


_GONE = _Current(None)


class Freshness:
    """Checks quotes against the files of the corpus settings name; safe to share between threads."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._max_bytes = int(settings.max_file_mb * 1_000_000)
        self._lock = threading.Lock()
        self._generation: Path | None = None
        self._metadata = None
        # source -> ((size, mtime), sha256) of its file when last hashed, once its mtime had settled.
        self._hashes: dict[str, tuple[tuple[int, int], str]] = {}
        self._current: OrderedDict[tuple[str, str], _Current] = OrderedDict()

    def check(self, quotes: Sequence[Quote], generation: Path) -> Checked:
        """`quotes` (cut from `generation`) as they stand in their files now, in order; those no longer
        there are left out, and the sources found changed are named."""
        changes: dict[str, _Current | None] = {}
        kept = []
        for quote in quotes:
            if quote.source not in changes:
                changes[quote.source] = self._change(quote.source, generation)
            current = changes[quote.source]
            if current is None:
                kept.append(quote)
            elif current.text is not None and (moved := relocated(quote, current.text, current.page_starts)):
                kept.append(moved)
        return Checked(tuple(kept), tuple(source for source, change in changes.items() if change is not None))

    def _change(self, source: str, generation: Path) -> _Current | None:
        """None if `source` is as indexed, else its text now."""
        indexed = self._indexed(source, generation)
        if indexed is None:
            return _GONE
        if indexed.kind == web.KIND:
            page = web.stored_page(self._settings, source, indexed.sha256)
            if page is None:
                return _GONE
            return None if page[0] == indexed.sha256 else _Current(page[1])
        path = self._settings.corpus_dir / source
        try:
            status = os.stat(path)
        except OSError:
            return _GONE
        if not stat.S_ISREG(status.st_mode):
            return _GONE
        if indexed.mtime_ns and (status.st_size, status.st_mtime_ns) == (indexed.size, indexed.mtime_ns):
            return None
        sha = self._sha256(path, source, status)
        if sha is None:
            return _GONE
        return None if sha == indexed.sha256 else self._current_text(path, source, sha, status.st_size)

    def _sha256(self, path: Path, source: str, status: os.stat_result) -> str | None:
        """The file's hash (None if a build would skip it), remembered by its size and mtime once those
        have settled: a file touched, or changed and not yet indexed, is hashed once, not at every answer."""
        seen = (status.st_size, status.st_mtime_ns)
        remembered = self._hashes.get(source)
        if remembered is not None and remembered[0] == seen:
            return remembered[1]
        try:
            sha = regular_file_sha256(path, self._max_bytes)
        except Unreadable:
            return None
        if settled_mtime(status):  # a later write in the same tick would go unseen otherwise
            with self._lock:
                self._hashes[source] = (seen, sha)
        return sha

    def _current_text(self, path: Path, source: str, sha: str, size: int) -> _Current:
        with self._lock:
            current = self._current.get((source, sha))
        if current is not None:
            return current
        try:
            document = read_document(CorpusFile(path, source, size), self._max_bytes)
        except Unreadable:
            return _GONE
        current = _Current(document.text, document.page_starts)
        with self._lock:
            self._current[(source, document.sha256)] = current
            while len(self._current) > _CURRENT_TEXTS_KEPT:
                self._current.popitem(last=False)
        return current

    def _indexed(self, source: str, generation: Path) -> store.IndexedFile | None:
        with self._lock:
            if generation != self._generation:
                if self._metadata is not None:
                    self._metadata.close()
                self._metadata, self._generation = store.open_metadata(generation), generation
            return store.indexed_file(self._metadata, source)


def relocated(quote: Quote, text: str, page_starts: tuple[int, ...] = ()) -> Quote | None:
    """`quote` at its offsets in `text` if they still hold it, else at the nearest place where its exact
    characters now are (line and page updated), else None."""
    if text[quote.start : quote.end] == quote.text:
        start = quote.start
    else:
        after = text.find(quote.text, quote.start)
        before = text.rfind(quote.text, 0, quote.start + len(quote.text) - 1)
        found = [at for at in (before, after) if at >= 0]
        if not found:
            return None
        start = min(found, key=lambda at: abs(at - quote.start))
    page, line = _page_and_line(text, page_starts, start)
    return replace(quote, start=start, end=start + len(quote.text), line=line, page=page)


def _page_and_line(text: str, page_starts: tuple[int, ...], start: int) -> tuple[int | None, int]:
    # As the build numbers them: lines count "\n" only; a paged document's lines restart on each page.
    if not page_starts:
        return None, text.count("\n", 0, start) + 1
    page = bisect.bisect_right(page_starts, start)
    return page, text.count("\n", page_starts[page - 1], start) + 1


def rebuild_command(settings: Settings) -> str:
    """The command that rebuilds the index these settings answer from: `--shelf NAME` for a configured
    shelf, else `--corpus DIR` (and `--index DIR` where the index is not the corpus's own)."""
    for name, shelf in settings.shelves.items():
        index_dir = shelf.index_dir or default_index_dir(shelf.corpus_dir, settings.data_dir)
        if _same(shelf.corpus_dir, settings.corpus_dir) and _same(index_dir, settings.index_dir):
            return f"verbatim index build --shelf {shlex.quote(name)}"
    command = f"verbatim index build --corpus {shlex.quote(str(settings.corpus_dir))}"
    if not _same(settings.index_dir, default_index_dir(settings.corpus_dir, settings.data_dir)):
        command += f" --index {shlex.quote(str(settings.index_dir))}"
    return command


def _same(first: Path, second: Path) -> bool:
    return first.expanduser().absolute() == second.expanduser().absolute()
