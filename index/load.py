"""Find the documents of a corpus and read each into a `Document`."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from index.errors import CorpusMissing
from index.types import Document, Skipped

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown")


class Unreadable(Exception):
    """A file that cannot become a document; the message says why."""


@dataclass(frozen=True)
class CorpusFile:
    """A candidate file: its path on disk and its name in citations."""

    path: Path
    source: str


def discover(corpus_dir: Path) -> tuple[list[CorpusFile], list[Skipped]]:
    """Files under `corpus_dir` with a supported suffix, in a stable order."""
    if not corpus_dir.is_dir():
        raise CorpusMissing(f"corpus directory not found: {corpus_dir} (set --corpus or VERBATIM_CORPUS_DIR)")
    root = corpus_dir.resolve()
    found: list[CorpusFile] = []
    skipped: list[Skipped] = []
    for path in sorted(_walk(root)):
        source = path.relative_to(root).as_posix()
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            continue
        if path.is_symlink() and not _inside(Path(os.path.realpath(path)), root):
            skipped.append(Skipped(source, "symlink leads outside the corpus"))
            continue
        found.append(CorpusFile(path, source))
    return found, skipped


def read_document(file: CorpusFile, max_bytes: int) -> Document:
    """Read and decode one file; raise `Unreadable` with the reason if it can't be used."""
    try:
        size = file.path.stat().st_size
        if size > max_bytes:
            raise Unreadable(f"larger than the limit ({size / 1e6:.1f} MB > {max_bytes / 1e6:.1f} MB)")
        raw = file.path.read_bytes()
    except OSError as error:
        raise Unreadable(error.strerror or str(error)) from error
    if b"\x00" in raw[:8192]:
        raise Unreadable("binary file (contains NUL bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Unreadable(f"not valid UTF-8 (byte {error.start})") from error
    if text.startswith("\ufeff"):
        text = text[1:]  # a byte-order mark is encoding, not content
    if not text.strip():
        raise Unreadable("empty")
    kind = "md" if file.path.suffix.lower() in (".md", ".markdown") else "txt"
    return Document(file.source, text, hashlib.sha256(raw).hexdigest(), kind)


def _walk(root: Path) -> Iterator[Path]:
    # os.walk-style, never following directory symlinks, so loops cannot trap it.
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = list(directory.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir() and not entry.is_symlink():
                stack.append(entry)
            elif entry.is_file() or entry.is_symlink():
                yield entry


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
