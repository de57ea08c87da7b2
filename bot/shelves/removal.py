"""Removing a document from a shelf (Discord's /remove), undone if the index can't follow.

Only a document the shelf's index lists can be removed: never a hidden file, nor one the
index skipped or never saw (`.git/config`, `private/keys.pem`). Its file is not deleted
at once but set aside in the shelf's own index folder (`index_dir`/removed/, which
builds never read), until the index without it is published; if that rebuild fails,
the file is put back where it was, so corpus and index keep agreeing.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from config import Settings
from index.errors import IndexMissing, VerbatimError
from index.sources.load import printable_name
from index.storage import store

# Under the shelf's index_dir: documents set aside while the index without them is built.
REMOVED_DIR = "removed"


class RemoveRefused(VerbatimError):
    """A removal that is not done; the message tells the user why (never a server path)."""


@dataclass(frozen=True)
class SetAside:
    """A document moved out of the corpus while its shelf is rebuilt without it."""

    source: str
    original: Path  # where it was, in the corpus
    kept: Path  # where it waits, under index_dir/removed/
    sha256: str  # of its bytes ("" for a link leading out of the corpus)

    def restore(self) -> None:
        """Put the document back where it was (never over a file added there meanwhile)."""
        if os.path.lexists(self.original):
            raise RemoveRefused(f"{_shown(self.source)} was added again meanwhile; the removed copy is kept in "
                                f"{REMOVED_DIR}/ of the shelf's index folder")
        self.original.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(self.kept, self.original)
        shutil.rmtree(self._holder, ignore_errors=True)

    def discard(self) -> None:
        """Delete the document for good: the index without it is published."""
        shutil.rmtree(self._holder, ignore_errors=True)

    @property
    def _holder(self) -> Path:
        # kept is <holder>/<source>: one folder per removal, so a source's folders come along.
        return self.kept.parents[len(PurePosixPath(self.source).parts) - 1]


def removable(settings: Settings, source: str) -> Path:
    """The corpus file of the indexed document `source`; RemoveRefused unless the shelf's index
    lists it and it is a file inside the corpus, on no hidden path."""
    if "://" in source:
        raise RemoveRefused(f"{_shown(source)} is a web page; remove its web source instead")
    relative = PurePosixPath(source)
    if not source or relative.is_absolute() or ".." in relative.parts or "\\" in source:
        raise RemoveRefused(f"{_shown(source)} is not a document name in this shelf")
    # Builds never index hidden files: such a name is no document, whatever the index says.
    if any(part.startswith(".") for part in relative.parts) or not _indexed(settings.index_dir, source):
        raise RemoveRefused(f"{_shown(source)} is not among the documents here; pick one from the list")
    root = settings.corpus_dir.resolve()
    path = root / relative
    # The folders on the way must stay inside the corpus (a linked folder could lead out);
    # the file itself may be a link: moving it moves the link, never its target.
    if not Path(os.path.realpath(path.parent)).is_relative_to(root):
        raise RemoveRefused(f"{_shown(source)} is not a document name in this shelf")
    if not path.is_symlink() and not path.is_file():
        raise RemoveRefused(f"{_shown(source)} is no longer in the documents folder; reindex to drop it")
    return path


def set_aside(settings: Settings, source: str) -> SetAside:
    """Move the indexed document `source` out of the corpus into index_dir/removed/; RemoveRefused
    if it may not be removed or can't be moved (then it stays where it is)."""
    path = removable(settings, source)
    inside = Path(os.path.realpath(path)).is_relative_to(settings.corpus_dir.resolve())
    sha256 = store.file_sha256(path) if inside and path.is_file() else ""
    holder = settings.index_dir / REMOVED_DIR / uuid.uuid4().hex[:12]
    kept = holder / source  # its corpus path kept: a removal a crash cut short can be finished
    try:
        kept.parent.mkdir(parents=True)
        shutil.move(path, kept)  # a rename on one disk; else a copy, then the original is deleted
    except OSError as error:
        shutil.rmtree(holder, ignore_errors=True)
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise RemoveRefused(f"the disk is full at {REMOVED_DIR}/ in the shelf's index folder, where "
                                f"{_shown(source)} waits while the index is rebuilt; nothing was removed") from None
        raise RemoveRefused(f"{_shown(source)} cannot be moved out of the documents folder "
                            f"({error.strerror or error}); nothing was removed") from None
    return SetAside(source, path, kept, sha256)


def settle_leftovers(settings: Settings) -> list[str]:
    """Finish removals a crash cut short: a document the index still lists goes back to the corpus
    (unless its place was taken meanwhile), one it no longer lists is deleted. The sources put back."""
    root = settings.index_dir / REMOVED_DIR
    if not root.is_dir():
        return []
    restored = []
    for holder in sorted(root.iterdir()):
        kept = sorted(path for path in holder.rglob("*") if path.is_symlink() or path.is_file())
        if not kept:
            shutil.rmtree(holder, ignore_errors=True)
            continue
        source = kept[0].relative_to(holder).as_posix()
        aside = SetAside(source, settings.corpus_dir / source, kept[0], "")
        if not _indexed(settings.index_dir, source):
            aside.discard()
        elif not os.path.lexists(aside.original):
            aside.restore()
            restored.append(source)
    return restored


def _indexed(index_dir: Path, source: str) -> bool:
    try:
        generation = store.current_generation(index_dir)
    except IndexMissing:
        return False
    with closing(store.open_metadata(generation)) as connection:
        rows = store.query_metadata(connection, generation, "SELECT 1 FROM documents WHERE source = ?", (source,))
    return bool(rows)


def _shown(name: str) -> str:
    """A name as a message may show it: escaped, and clipped."""
    name = printable_name(name)
    return repr(name if len(name) <= 120 else name[:119] + "…")
