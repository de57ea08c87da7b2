"""Find the documents of a corpus and read each into a `Document`.

.txt and .md are decoded as UTF-8 and kept exactly. .html/.htm and .pdf are
extracted to text once, at build time, and that text is stored in the index, so
quotes are always exact substrings of a stored text.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from index.errors import CorpusMissing
from index.types import Document, Skipped

KINDS = {".txt": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".pdf": "pdf",
         # Office, EPUB, OpenDocument and reStructuredText: index/formats.py.
         ".docx": "docx", ".pptx": "pptx", ".epub": "epub", ".odt": "odt", ".rst": "rst"}
SUPPORTED_SUFFIXES = tuple(KINDS)
_HEADING = re.compile(r"^\s*#{0,6}\s*(.+?)\s*#*\s*$")


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
    for path in sorted(_walk(root, skipped)):
        source = path.relative_to(root).as_posix()
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            continue
        if path.is_symlink() and not _inside(Path(os.path.realpath(path)), root):
            skipped.append(Skipped(source, "symlink leads outside the corpus"))
            continue
        found.append(CorpusFile(path, source))
    return found, skipped


def read_document(file: CorpusFile, max_bytes: int) -> Document:
    """Read and extract one file; raise `Unreadable` with the reason if it can't be used."""
    try:
        size = file.path.stat().st_size
        if size > max_bytes:
            raise Unreadable(f"larger than the limit ({size / 1e6:.1f} MB > {max_bytes / 1e6:.1f} MB)")
        raw = file.path.read_bytes()
    except OSError as error:
        raise Unreadable(error.strerror or str(error)) from error
    kind = KINDS[file.path.suffix.lower()]
    sha = hashlib.sha256(raw).hexdigest()
    sections = ()
    from index import formats  # hook: Office, EPUB, OpenDocument, reStructuredText

    if kind in formats.KINDS:
        extracted = formats.extract(kind, raw, max_bytes, _plain, _html)
        text, page_starts, title, sections = extracted.text, extracted.page_starts, extracted.title, extracted.sections
    elif kind == "pdf":
        text, page_starts, title = _pdf(raw)
    elif kind == "html":
        text, title = _html(raw)
        page_starts = ()
    else:
        text, page_starts = _plain(raw), ()
        title = _first_line(text)
        if kind == "md":
            sections = formats.markdown_sections(text)  # heading paths for citations
    if not text.strip():
        raise Unreadable("empty" if kind in ("txt", "md", "rst") else "no text could be extracted")
    return Document(file.source, text, sha, kind, page_starts, title or file.path.stem, len(raw), sections)


def _plain(raw: bytes) -> str:
    if b"\x00" in raw[:8192]:
        raise Unreadable("binary file (contains NUL bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Unreadable(f"not valid UTF-8 (byte {error.start})") from error
    return text[1:] if text.startswith("\ufeff") else text  # a byte-order mark is encoding, not content


def _html(raw: bytes) -> tuple[str, str]:
    import trafilatura

    try:
        extracted = trafilatura.bare_extraction(raw, include_comments=False, include_tables=True, with_metadata=True)
    except Exception as error:  # the extractor raises many kinds on broken markup
        raise Unreadable(f"HTML could not be parsed: {error}") from error
    if extracted is None or not (extracted.text or "").strip():
        raise Unreadable("no main text found in the HTML")
    # One paragraph per extracted line, blank lines between: the paragraph
    # breaks that chunking respects.
    lines = [line.strip() for line in extracted.text.splitlines() if line.strip()]
    return "\n\n".join(lines) + "\n", (extracted.title or "").strip()


def _pdf(raw: bytes) -> tuple[str, tuple[int, ...], str]:
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise Unreadable("encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = str((reader.metadata or {}).get("/Title") or "").strip()
    except Unreadable:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError) as error:
        raise Unreadable(f"malformed PDF: {error}") from error
    parts, page_starts, position = [], [], 0
    for page in pages:
        page_starts.append(position)
        text = page.rstrip() + "\n\n"
        parts.append(text)
        position += len(text)
    text = "".join(parts)
    if not text.strip():
        raise Unreadable("no text in the PDF (scanned images?)")
    return text, tuple(page_starts), title or _first_line(text)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            match = _HEADING.match(line)
            return (match.group(1) if match else line.strip())[:200]
    return ""


def _walk(root: Path, skipped: list[Skipped]) -> Iterator[Path]:
    # Never follows directory symlinks, so loops cannot trap it.
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = list(directory.iterdir())
        except OSError as error:
            name = directory.relative_to(root).as_posix() + "/"
            skipped.append(Skipped(name, f"directory cannot be listed ({error.strerror or error})"))
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
