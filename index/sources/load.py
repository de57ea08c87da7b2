"""Find the documents of a corpus and read each into a `Document`.

.txt and .md are decoded (UTF-8, or UTF-16 with a byte-order mark) and kept
exactly. .html/.htm and .pdf are extracted to text once, at build time, and that
text is stored in the index, so quotes are always exact substrings of a stored text.

Every file passed over becomes a `Skipped` whose `reason` is one of the short,
stable categories below (for counting), with the specifics in `detail`.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import stat
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from index.errors import CorpusMissing, Unreadable
from index.types import Document, Skipped

KINDS = {".txt": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".pdf": "pdf",
         # Office, EPUB, OpenDocument and reStructuredText: index/sources/formats.py.
         ".docx": "docx", ".pptx": "pptx", ".epub": "epub", ".odt": "odt", ".rst": "rst"}
SUPPORTED_SUFFIXES = tuple(KINDS)
_KEPT_AS_WRITTEN = ("txt", "md", "rst")  # their text is the file's, decoded
TITLE_MAX_CHARS = 120
_HEADING = re.compile(r"^\s*#{0,6}\s*(.+?)\s*#*\s*$")


# The stable reasons a file is skipped (what a summary counts by).
UNSUPPORTED = "unsupported type"
HIDDEN = "hidden"
OUTSIDE = "symlink leads outside the corpus"
NOT_REGULAR = "not a regular file"
UNLISTABLE = "directory cannot be listed"
DIRECTORY_LINK = "symlinked directory (not followed)"
TOO_LARGE = "too large"
CANNOT_READ = "cannot be read"
BINARY = "binary"
BAD_ENCODING = "bad encoding"
EMPTY = "empty"
NO_MAIN_TEXT = "no main text"
BAD_HTML = "malformed HTML"
BAD_PDF = "malformed PDF"
ENCRYPTED = "encrypted PDF"
NO_PDF_TEXT = "no text in the PDF"
TOO_MUCH_TEXT = "too much text"

# Byte-order marks, longest first (UTF-32 LE's begins with UTF-16 LE's).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
# A file modified this recently may be written again within the same timestamp tick (coarse on
# some file systems, 2 s on FAT), so its mtime would not show that later write: it proves nothing.
SETTLE_NS = 2_000_000_000
# Starts a DOCTYPE with an internal subset, which HTML parsers leave half in the text ("]>").
_DOCTYPE_SUBSET = re.compile(rb"\A((?:\xef\xbb\xbf)?\s*<!DOCTYPE[^\[>]*)\[.*?\]\s*>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class CorpusFile:
    """A candidate file: its path on disk, its name in citations, and its size and settled mtime when found."""

    path: Path
    source: str
    size: int = 0
    mtime_ns: int = 0


def discover(corpus_dir: Path) -> tuple[list[CorpusFile], list[Skipped]]:
    """Regular files under `corpus_dir` with a supported suffix, in a stable order, and the rest as `Skipped`."""
    if not corpus_dir.is_dir():
        raise CorpusMissing(f"corpus directory not found: {corpus_dir} (set --corpus or VERBATIM_CORPUS_DIR)")
    root = corpus_dir.resolve()
    found: list[CorpusFile] = []
    skipped: list[Skipped] = []
    for path in sorted(_walk(root, skipped)):
        source = path.relative_to(root).as_posix()
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            skipped.append(Skipped(source, UNSUPPORTED))
        elif path.is_symlink() and not _inside(Path(os.path.realpath(path)), root):
            skipped.append(Skipped(source, OUTSIDE))
        elif (status := _stat(path)) is not None and not stat.S_ISREG(status.st_mode):
            # Reading a FIFO would block the build forever (holding the lock); a device never ends.
            skipped.append(Skipped(source, NOT_REGULAR, _describe_mode(status.st_mode)))
        else:
            # A link that dangles or loops is kept: read_document names the problem.
            found.append(CorpusFile(path, source, status.st_size if status else 0, settled_mtime(status)))
    skipped.sort(key=lambda s: s.source)
    return found, skipped


def read_document(file: CorpusFile, max_bytes: int, progress: Callable[[int], None] | None = None,
                  max_chars: int | None = None) -> Document:
    """Read and extract one file; raise `Unreadable` with the reason if it can't be used.

    `progress`, if given, is told of `file.size` bytes in all, page by page for a PDF, whatever the outcome.
    A text over `max_chars` characters is refused (a PDF's as soon as its pages pass it): a small
    file can expand to gigabytes of text. index.sources.sandbox runs this in a worker process with limits.
    """
    reported = 0

    def report(fraction: float) -> None:
        nonlocal reported
        if progress is not None and int(file.size * fraction) > reported:
            progress(int(file.size * fraction) - reported)
            reported = int(file.size * fraction)

    try:
        return _read_document(file, max_bytes, report, max_chars)
    finally:
        report(1.0)


def _read_document(file: CorpusFile, max_bytes: int, report: Callable[[float], None],
                   max_chars: int | None = None) -> Document:
    raw = _read_regular_file(file.path, max_bytes)
    kind = KINDS[file.path.suffix.lower()]
    sha = hashlib.sha256(raw).hexdigest()
    sections = ()
    from index.sources import formats  # hook: Office, EPUB, OpenDocument, reStructuredText

    if kind in formats.KINDS:
        extracted = formats.extract(kind, raw, max_bytes, _plain, _html)
        text, page_starts, title, sections = extracted.text, extracted.page_starts, extracted.title, extracted.sections
    elif kind == "pdf":
        text, page_starts, title = _pdf(raw, report, max_chars)
    elif kind == "html":
        text, title = _html(raw)
        page_starts, sections = (), formats.html_sections(raw, text)  # h1–h6 for citations
    else:
        text, page_starts = _plain(raw), ()
        title = _first_line(text)
        if kind == "md":
            sections = formats.markdown_sections(text)  # heading paths for citations
    if not text.strip():
        raise Unreadable(EMPTY if kind in ("txt", "md", "rst") else NO_MAIN_TEXT)
    # Plain text is bounded by max_bytes already; extracted formats can expand.
    if max_chars is not None and kind not in _KEPT_AS_WRITTEN and len(text) > max_chars:
        raise Unreadable(TOO_MUCH_TEXT, f"{len(text):,} characters > {max_chars:,} limit (extract_max_chars)")
    return Document(file.source, text, sha, kind, page_starts, title or file.path.stem, len(raw), sections,
                    file.mtime_ns)


def settled_mtime(status: os.stat_result | None) -> int:
    """The mtime (ns) of a file stat()ed just now, or 0 when it is too recent (or in the future) to trust."""
    if status is None or status.st_mtime_ns > time.time_ns() - SETTLE_NS:
        return 0
    return status.st_mtime_ns


def printable_name(source: str) -> str:
    """`source` with control and other invisible characters escaped (`\\n`, `\\x1b`), so it stays one honest line."""
    if source.isprintable():
        return source
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in source)


def summarise_skips(skipped: list[Skipped] | tuple[Skipped, ...], first: int = 3) -> list[str]:
    """One line per reason, most frequent first: "9,990 unsupported type (a.bin, b.exe, c.dat, …)"."""
    by_reason: defaultdict[str, list[str]] = defaultdict(list)
    for item in skipped:
        by_reason[item.reason].append(item.source)
    lines = []
    for reason, sources in sorted(by_reason.items(), key=lambda pair: (-len(pair[1]), pair[0])):
        names = ", ".join(printable_name(source) for source in sources[:first])
        more = ", …" if len(sources) > first else ""
        lines.append(f"{len(sources):,} {reason} ({names}{more})")
    return lines


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()  # follows symlinks: what would be read
    except OSError:
        return None


def _describe_mode(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a file"


def regular_file_sha256(path: Path, max_bytes: int) -> str:
    """Hex sha256 of a file's bytes, read as a build reads them; `Unreadable` if the build would skip it."""
    return hashlib.sha256(_read_regular_file(path, max_bytes)).hexdigest()


def _read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The file's bytes; never blocks, because only a regular file (checked on the open descriptor) is read."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise Unreadable(CANNOT_READ, error.strerror or str(error)) from error
    with os.fdopen(descriptor, "rb") as handle:
        try:
            status = os.fstat(descriptor)
            if not stat.S_ISREG(status.st_mode):
                raise Unreadable(NOT_REGULAR, _describe_mode(status.st_mode))
            if status.st_size > max_bytes:
                raise Unreadable(TOO_LARGE, f"{status.st_size / 1e6:.1f} MB > {max_bytes / 1e6:.1f} MB limit")
            raw = handle.read(max_bytes + 1)  # +1: a file that grew since fstat is still caught
        except OSError as error:
            raise Unreadable(CANNOT_READ, error.strerror or str(error)) from error
    if len(raw) > max_bytes:
        raise Unreadable(TOO_LARGE, f"grew past the {max_bytes / 1e6:.1f} MB limit while being read")
    return raw


def _plain(raw: bytes) -> str:
    """The decoded text; a byte-order mark is encoding, not content, so it is not part of the text."""
    encoding = next((name for bom, name in _BOMS if raw.startswith(bom)), None)
    if encoding is None and b"\x00" in raw:
        raise Unreadable(BINARY, "contains NUL bytes")
    try:
        text = raw.decode(encoding or "utf-8")
    except UnicodeDecodeError as error:
        raise Unreadable(BAD_ENCODING, f"not valid {(encoding or 'utf-8').upper()} at byte {error.start}") from error
    if "\x00" in text:
        raise Unreadable(BINARY, "contains NUL characters")
    return text


def _html(raw: bytes) -> tuple[str, str]:
    import trafilatura

    raw = _DOCTYPE_SUBSET.sub(rb"\1>", raw, count=1)
    try:
        extracted = trafilatura.bare_extraction(raw, include_comments=False, include_tables=True, with_metadata=True)
    except Exception as error:  # the extractor raises many kinds on broken markup
        raise Unreadable(BAD_HTML, str(error)) from error
    if extracted is None or not (extracted.text or "").strip():
        raise Unreadable(NO_MAIN_TEXT)
    lines = [line.strip() for line in extracted.text.splitlines() if line.strip()]
    if _only_links(raw, lines):
        # trafilatura falls back to whatever text there is: on a page of menus, the menu.
        raise Unreadable(NO_MAIN_TEXT, "only navigation links")
    # One paragraph per extracted line, blank lines between: the paragraph
    # breaks that chunking respects.
    return "\n\n".join(lines) + "\n", (extracted.title or "").strip()


def _only_links(raw: bytes, lines: list[str]) -> bool:
    """Whether every extracted line with a letter or digit is the text of a link."""
    import lxml.html
    from lxml.etree import ParserError

    try:
        tree = lxml.html.fromstring(raw)
    except (ParserError, ValueError):
        return False
    links = {" ".join(anchor.text_content().split()) for anchor in tree.iter("a")}
    return all(" ".join(line.split()) in links for line in lines if any(c.isalnum() for c in line))


def _pdf(raw: bytes, report: Callable[[float], None], max_chars: int | None = None) -> tuple[str, tuple[int, ...], str]:
    import io
    import logging

    from pypdf import PasswordType, PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(raw))
        # Many PDFs are encrypted only to set permissions, with an empty user password: open those.
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise Unreadable(ENCRYPTED, "needs a password")
        pages, length, seen = [], 0, {}
        for number, page in enumerate(reader.pages, start=1):
            # Pages may share one content stream: its text is extracted once, so a crafted file's
            # time does not grow with its page count (its text still does, up to max_chars).
            key = _page_key(page)
            if key is None:
                pages.append(page.extract_text() or "")
            else:
                if key not in seen:
                    seen[key] = page.extract_text() or ""
                pages.append(seen[key])
            length += len(pages[-1])
            if max_chars is not None and length > max_chars:
                raise Unreadable(TOO_MUCH_TEXT, f"over {max_chars:,} characters by page {number} of "
                                                f"{len(reader.pages)} (extract_max_chars)")
            report(number / len(reader.pages))
        title = str((reader.metadata or {}).get("/Title") or "").strip()
    except Unreadable:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError, NotImplementedError) as error:
        raise Unreadable(BAD_PDF, str(error)) from error
    parts, page_starts, position = [], [], 0
    for page in pages:
        page_starts.append(position)
        text = page.rstrip() + "\n\n"
        parts.append(text)
        position += len(text)
    text = "".join(parts)
    if not text.strip():
        raise Unreadable(NO_PDF_TEXT, "scanned images?")
    return text, tuple(page_starts), title or _first_line(text)


def _page_key(page) -> tuple | None:
    """What a page's text depends on, when its content is one shared stream (or list of them); else None."""
    from pypdf.generic import ArrayObject, IndirectObject

    contents = page.raw_get("/Contents") if "/Contents" in page else None
    if isinstance(contents, IndirectObject):
        streams = (contents.idnum, contents.generation)
    elif isinstance(contents, ArrayObject) and all(isinstance(item, IndirectObject) for item in contents):
        streams = tuple((item.idnum, item.generation) for item in contents)
    else:
        return None
    # Fonts (in the resources, perhaps inherited) and rotation change what the same stream reads as.
    return streams, repr(page.get("/Resources")), page.rotation, tuple(page.mediabox)


def _first_line(text: str) -> str:
    # A first line longer than a title, or ending as a sentence does, is a paragraph: the file's
    # name then titles it better.
    for line in text.splitlines():
        if line.strip():
            match = _HEADING.match(line)
            first = match.group(1) if match else line.strip()
            return first if len(first) <= TITLE_MAX_CHARS and not first.endswith(".") else ""
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
            skipped.append(Skipped(name, UNLISTABLE, error.strerror or str(error)))
            continue
        for entry in entries:
            is_directory = entry.is_dir() and not entry.is_symlink()
            if entry.name.startswith("."):
                # A hidden directory (.git) is one entry, not thousands.
                skipped.append(Skipped(entry.relative_to(root).as_posix() + ("/" if is_directory else ""), HIDDEN))
            elif is_directory:
                stack.append(entry)
            elif entry.is_dir():
                skipped.append(Skipped(entry.relative_to(root).as_posix() + "/", DIRECTORY_LINK))
            else:
                yield entry


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
