"""Documents added to a shelf's corpus from outside (Discord's /add), and the record of additions and
removals (bot/shelves/removal.py).

An upload is checked before it joins the corpus: its size, its type by
content (the extension must agree), zip bombs, its name, whether it extracts
within the limits a build applies (index/sources/sandbox.py, as a hidden draft), and
whether the same bytes are already there. It is then linked in atomically under
`uploads/`, so a build running meanwhile sees the whole file or none of it. Who added or removed
what, and when, goes to a `Ledger`.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import sqlite3
import tempfile
import threading
import unicodedata
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from config.settings import size_in_bytes
from index.errors import Unreadable, VerbatimError
from index.sources.formats import UNZIPPED_PER_ZIPPED, open_zip
from index.sources.load import KINDS, CorpusFile, printable_name
from index.sources.sandbox import ExtractLimits, read_files
from index.storage.store import _fsync_path as fsync_directory, file_sha256  # fsync: the index's own durable-write helper
from index.types import Skipped

# Uploads live apart from the files an operator put in the corpus by hand.
UPLOADS_DIR = "uploads"
# Longest file name kept (characters, extension and any "-2" of a name taken included): a longer
# stem is shortened, so that "uploads/" plus the name stays within Discord's 100-character
# autocomplete values (a longer source is never offered, so could never be picked for /remove).
AUTOCOMPLETE_MAX = 100
MAX_NAME_CHARS = AUTOCOMPLETE_MAX - len(UPLOADS_DIR) - 1
# Longest file name in bytes most file systems (ext4, XFS, APFS) store.
MAX_NAME_BYTES = 255
# A zip member that unpacks to more than this many times its packed size, once it is
# over BOMB_MEMBER_BYTES, is a zip bomb (real Office XML packs 5-20x; Apache POI's limit is 100x).
MAX_MEMBER_RATIO = 100
BOMB_MEMBER_BYTES = 1_000_000
# Real documents have tens to a few thousand zip members.
MAX_ZIP_MEMBERS = 10_000

ADDED = "add"
REMOVED = "remove"

# What the first bytes of a program look like: Windows (MZ), Linux (ELF), macOS (Mach-O, fat), scripts.
_PROGRAMS = (
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a Linux program"),
    (b"\xfe\xed\xfa\xce", "a macOS program"), (b"\xfe\xed\xfa\xcf", "a macOS program"),
    (b"\xce\xfa\xed\xfe", "a macOS program"), (b"\xcf\xfa\xed\xfe", "a macOS program"),
    (b"\xca\xfe\xba\xbe", "a macOS program"),
    (b"#!", "a script"),
)
# The zip members (and mimetype) that make a zip one of the document formats.
_ZIP_KINDS = {
    "docx": ("word/document.xml", None),
    "pptx": ("ppt/presentation.xml", None),
    "odt": ("content.xml", b"application/vnd.oasis.opendocument.text"),
    "epub": ("META-INF/container.xml", b"application/epub+zip"),
}
_TEXT_KINDS = ("txt", "md", "rst", "html")
_NAMES = {"pdf": "a PDF", "docx": "a Word document", "pptx": "a PowerPoint deck", "odt": "an OpenDocument text",
          "epub": "an EPUB book", "txt": "text", "md": "text", "rst": "text", "html": "text"}


class UploadRefused(VerbatimError):
    """An upload that is not saved; the message tells the uploader why (never a server path)."""


@dataclass(frozen=True)
class UploadLimits:
    """How large and how many uploads may be, and what a zipped document may unpack to."""

    max_bytes: int
    max_files: int
    max_unzipped_bytes: int = 0  # 0: UNZIPPED_PER_ZIPPED times max_bytes, as index builds allow
    max_member_ratio: int = MAX_MEMBER_RATIO
    max_zip_members: int = MAX_ZIP_MEMBERS
    # What extracting it may cost, as a build would (None: not tried before saving).
    extract: ExtractLimits | None = None

    @classmethod
    def from_settings(cls, settings) -> UploadLimits:
        """The limits `upload_max_mb`, `upload_max_files` and the build's extraction limits set."""
        return cls(size_in_bytes(settings, "upload_max_mb"), settings.upload_max_files,
                   extract=ExtractLimits.from_settings(settings))

    @property
    def unzipped_bytes(self) -> int:
        return self.max_unzipped_bytes or self.max_bytes * UNZIPPED_PER_ZIPPED

    def check_count(self, count: int) -> None:
        """UploadRefused if one command brings more than `max_files` files."""
        if count > self.max_files:
            raise UploadRefused(f"{count} files at once; add at most {self.max_files} a time")

    def check_size(self, filename: str, size: int) -> None:
        """UploadRefused if a file of `size` bytes is over the limit (call it before downloading)."""
        if size > self.max_bytes:
            raise UploadRefused(f"{_shown(filename)} is {size / 1e6:.1f} MB; files of at most "
                                f"{self.max_bytes / 1e6:g} MB can be added")


def save_upload(corpus_dir: Path, filename: str, data: bytes, limits: UploadLimits) -> Path:
    """Check an uploaded file and write it into `corpus_dir`/uploads; the path written, or UploadRefused."""
    limits.check_size(filename, len(data))
    name = safe_name(filename)
    kind = KINDS.get(PurePosixPath(name).suffix.lower())
    if kind is None:
        supported = " ".join(sorted(set(KINDS)))
        raise UploadRefused(f"{_shown(name)} is not a supported type; supported: {supported}")
    check_content(name, kind, data, limits)
    digest = hashlib.sha256(data).hexdigest()
    directory = corpus_dir / UPLOADS_DIR
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with _draft(directory, name, data) as draft:
            if limits.extract is not None:
                check_extraction(name, draft, limits.extract)
            # Checked and linked under one lock: two uploads of the same file at the same instant (from
            # this bot's threads or another process) must not both pass the duplicate check.
            with _exclusive(directory):
                existing = find_same_bytes(corpus_dir, data, digest)
                if existing is not None:
                    raise UploadRefused(f"already in the shelf as {_shown(existing)}")
                return _link_new(directory, name, draft)
    except OSError as error:  # the draft is gone already (_draft): nothing half-written stays
        where = f"{UPLOADS_DIR}/ in the shelf's documents folder"
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise UploadRefused(f"the disk is full at {where}; nothing was added (free some space there)") from None
        raise UploadRefused(f"cannot write to {where}: {error.strerror or error}; nothing was added") from None


def check_extraction(name: str, path: Path, limits: ExtractLimits) -> None:
    """UploadRefused, with the reason, unless the file at `path` extracts as a build would read it."""
    (result,) = read_files([CorpusFile(path.resolve(), name, path.stat().st_size)], limits, workers=1)
    if isinstance(result, Skipped):
        raise UploadRefused(f"{_shown(name)} cannot be indexed: {result.describe()}")


@contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    # flock on the directory itself (no lock file for builds to list as skipped); it is held per
    # open descriptor, so it also orders threads of one process that each open the directory.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def safe_name(filename: str) -> str:
    """A file name fit to save: Unicode-normalised, no path, not hidden, no control or invisible
    characters, at most MAX_NAME_CHARS characters and MAX_NAME_BYTES bytes long (the stem is
    shortened); UploadRefused otherwise."""
    # NFKC first: fullwidth "／" or "．" must not slip past the checks below as look-alikes.
    name = unicodedata.normalize("NFKC", filename).strip()
    if not name.isprintable():  # control, format (bidi overrides, zero-width), unassigned, separators but space
        raise UploadRefused(f"{_shown(filename)} has control or invisible characters in its name; rename it")
    if "/" in name or "\\" in name:
        raise UploadRefused(f"{_shown(filename)} is a path; give a plain file name")
    if not name or name in (".", ".."):
        raise UploadRefused("the file has no name; give it one")
    if name.startswith("."):
        raise UploadRefused(f"{_shown(filename)} is a hidden file name (it starts with a dot); rename it")
    if len(name) <= MAX_NAME_CHARS and len(name.encode()) <= MAX_NAME_BYTES:
        return name
    stem, suffix = _split(name)
    return _fitted(stem, suffix[:20])


def _fitted(stem: str, tail: str) -> str:
    """`stem` + `tail`, the stem shortened until it is at most MAX_NAME_CHARS and MAX_NAME_BYTES long."""
    room = MAX_NAME_CHARS - len(tail)
    while len((stem[:room] + tail).encode()) > MAX_NAME_BYTES:
        room -= 1
    return stem[:room].rstrip() + tail


def check_content(name: str, kind: str, data: bytes, limits: UploadLimits) -> None:
    """UploadRefused unless `data` is what `kind` (from the extension) says: a program, a zip bomb,
    or content of another type is refused."""
    for magic, program in _PROGRAMS:
        if data.startswith(magic):
            raise UploadRefused(f"{_shown(name)} is {program}, not a document; only documents can be added")
    found = _kind_of(data, limits)
    if found == kind or (found == "text" and kind in _TEXT_KINDS):
        return
    what = {"text": "text", None: "not a document Verbatim reads"}.get(found, _NAMES.get(found, found))
    raise UploadRefused(f"{_shown(name)} is named like {_NAMES[kind]} but its content is {what}; "
                        "give it the extension of what it is")


def _kind_of(data: bytes, limits: UploadLimits) -> str | None:
    """What the bytes are: "pdf", a zipped kind, "text" (UTF-8 without NULs), or None."""
    if b"%PDF-" in data[:1024]:  # readers accept a header anywhere in the first 1 KB
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return _zip_kind(data, limits)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return "text" if text.strip() and "\x00" not in text else None


def _zip_kind(data: bytes, limits: UploadLimits) -> str | None:
    try:
        archive = open_zip(data, limits.unzipped_bytes)  # the build's own checks: total size, macros, encryption
    except Unreadable as error:
        raise UploadRefused(f"the file cannot be added: {error}") from None
    with archive:
        members = archive.infolist()
        if len(members) > limits.max_zip_members:
            raise UploadRefused(f"the file holds {len(members):,} zipped parts (at most {limits.max_zip_members:,}): "
                                "a zip bomb?")
        for member in members:
            if (member.file_size > BOMB_MEMBER_BYTES
                    and member.file_size > limits.max_member_ratio * max(member.compress_size, 1)):
                raise UploadRefused(f"a part of the file unpacks {member.file_size // max(member.compress_size, 1):,} "
                                    f"times larger than it is packed (at most {limits.max_member_ratio}): a zip bomb?")
        names = set(archive.namelist())
        for kind, (member, mimetype) in _ZIP_KINDS.items():
            # OpenDocument and EPUB name their type in a "mimetype" member; Office files list theirs.
            marked = _read_small(archive, "mimetype") == mimetype if mimetype else "[Content_Types].xml" in names
            if member in names and marked:
                return kind
    return None


def _read_small(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        return b""
    return archive.read(info).strip() if info.file_size <= 100 else b""


def find_same_bytes(corpus_dir: Path, data: bytes, digest: str | None = None) -> str | None:
    """The corpus-relative name of a file holding exactly `data`, or None (only same-size files are hashed)."""
    digest = digest or hashlib.sha256(data).hexdigest()
    root = corpus_dir.resolve()
    for directory, subdirectories, files in os.walk(root):  # never follows directory links
        # Hidden files are not in the shelf (builds skip them), and drafts of uploads in progress are hidden.
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
        for file_name in sorted(name for name in files if not name.startswith(".")):
            path = Path(directory, file_name)
            try:
                if not path.is_file() or path.stat().st_size != len(data):
                    continue
                if file_sha256(path) == digest:
                    return path.relative_to(root).as_posix()
            except OSError:
                continue  # vanished or unreadable: it holds nothing to match
    return None


@contextmanager
def _draft(directory: Path, name: str, data: bytes) -> Iterator[Path]:
    """`data` written to a hidden file in `directory` (a build walking the corpus skips dot-files),
    ending as `name` does so that it is read as its kind; removed afterwards."""
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix=".upload-", suffix=".part" + _split(name)[1],
                                         delete=False)
    draft = Path(handle.name)
    try:
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(draft, 0o644)
        yield draft
    finally:
        draft.unlink(missing_ok=True)


def _link_new(directory: Path, name: str, draft: Path) -> Path:
    """Link `draft` in as `name` in `directory`, or `name-2`, `name-3`… if taken; never over an existing file."""
    stem, suffix = _split(name)
    for number in range(1, 1000):
        target = directory / (name if number == 1 else _fitted(stem, f"-{number}{suffix}"))
        try:
            os.link(draft, target)  # fails if the name is taken: unlike os.replace, it never overwrites
        except FileExistsError:
            continue
        fsync_directory(directory)  # the new name survives a power cut
        return target
    raise UploadRefused(f"too many files named {_shown(name)} already; rename it")


def _split(name: str) -> tuple[str, str]:
    suffix = PurePosixPath(name).suffix
    return name[: len(name) - len(suffix)], suffix


def _shown(name: str) -> str:
    """A name as a message may show it: escaped, and clipped."""
    name = printable_name(name)
    return repr(name if len(name) <= 120 else name[:119] + "…")


@dataclass(frozen=True)
class LedgerEntry:
    """One upload or removal: `when` is UTC, ISO 8601."""

    when: str
    actor_id: int
    actor_name: str
    action: str
    source: str
    sha256: str


_LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor_id INTEGER NOT NULL, actor_name TEXT NOT NULL,
    action TEXT NOT NULL, source TEXT NOT NULL, sha256 TEXT NOT NULL
);
"""


class Ledger:
    """Who added or removed which document, and when (SQLite at `path`)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._connection.executescript(_LEDGER_SCHEMA)
        self._lock = threading.Lock()  # one connection, used from worker threads

    def record(self, actor_id: int, actor_name: str, action: str, source: str, sha256: str) -> LedgerEntry:
        """Add an entry stamped now."""
        entry = LedgerEntry(datetime.now(timezone.utc).isoformat(timespec="seconds"), actor_id, actor_name,
                            action, source, sha256)
        with self._lock:
            self._connection.execute(
                "INSERT INTO ledger (at, actor_id, actor_name, action, source, sha256) VALUES (?, ?, ?, ?, ?, ?)",
                (entry.when, actor_id, actor_name, action, source, sha256),
            )
        return entry

    def entries(self, limit: int = 20) -> list[LedgerEntry]:
        """The latest `limit` entries, newest first."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT at, actor_id, actor_name, action, source, sha256 FROM ledger ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [LedgerEntry(*row) for row in rows]

    def close(self) -> None:
        """Release the database."""
        self._connection.close()
