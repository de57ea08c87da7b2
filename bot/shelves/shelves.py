"""Shelves: named corpora, each with its own index and feedback, and who may read it in Discord.

With no shelves configured there is one, "default", made of corpus_dir, index_dir and
feedback_db and served wherever the bot serves, so a one-community set-up needs none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from config import Settings
from config.settings import InvalidSetting, ShelfSettings, default_index_dir
from index.errors import VerbatimError
from index.storage import store

DEFAULT = "default"


class UnknownShelf(VerbatimError):
    """No shelf has the name asked for."""


@dataclass(frozen=True, eq=False)
class Shelf:
    """A corpus with its index and feedback (in `settings`), and who may read it in Discord."""

    name: str
    settings: Settings
    guild_ids: frozenset[int] | None  # None: every server the bot serves (the implicit default shelf)
    channel_ids: frozenset[int] = frozenset()
    role_ids: frozenset[int] = frozenset()
    uploader_role_ids: frozenset[int] = frozenset()

    @property
    def private(self) -> bool:
        """Restricted to roles: its answers are shown only to the asker, never to the whole channel."""
        return bool(self.role_ids)

    def readable_in(self, guild_id: int | None, channel_ids: Iterable[int], role_ids: Iterable[int]) -> bool:
        """Whether a member with `role_ids` in one of `channel_ids` (a thread and its parent) of `guild_id` may read it."""
        if self.guild_ids is None:
            return True
        if guild_id not in self.guild_ids:
            return False
        if self.channel_ids and self.channel_ids.isdisjoint(channel_ids):
            return False
        return not self.role_ids or not self.role_ids.isdisjoint(role_ids)

    @property
    def specificity(self) -> tuple[bool, bool]:
        """Channel-specific before server-wide, then restricted to roles before open to every member."""
        return bool(self.channel_ids), bool(self.role_ids)


def configured_shelves(settings: Settings) -> list[Shelf]:
    """Every shelf in configuration order; the implicit "default" one when none is configured.

    InvalidSetting if a shelf has no corpus folder, or two shelves share a corpus or an index
    folder (checked here, by the commands that read shelves, not by every command).
    """
    if not settings.shelves:
        return [Shelf(DEFAULT, settings, None)]
    for name, shelf in settings.shelves.items():
        if shelf.corpus_dir is None:
            raise InvalidSetting(f"setting shelves.{name}.corpus_dir is empty: name the shelf's documents folder")
    shelves = [_shelf(name, shelf, settings) for name, shelf in settings.shelves.items()]
    check_apart(shelves)
    return shelves


def check_apart(shelves: list[Shelf]) -> None:
    """InvalidSetting if two shelves share a folder: each shelf's corpus and index are its own,
    or building one would make the other quote its documents (and rebuild over them)."""
    owner: dict[Path, str] = {}
    for shelf in shelves:
        for setting in ("corpus_dir", "index_dir"):
            path = getattr(shelf.settings, setting)
            where = f"shelves.{shelf.name}.{setting}"
            folder = path.resolve()
            if folder in owner:
                raise InvalidSetting(f"settings {owner[folder]} and {where} are the same folder ({path}): "
                                     "give each shelf its own corpus and index folders")
            owner[folder] = where


def _shelf(name: str, shelf: ShelfSettings, settings: Settings) -> Shelf:
    feedback_db = shelf.feedback_db or settings.feedback_db.with_name(
        f"{settings.feedback_db.stem}-{name}{settings.feedback_db.suffix}"
    )
    own = settings.model_copy(update={
        "corpus_dir": shelf.corpus_dir,
        "index_dir": shelf.index_dir or default_index_dir(shelf.corpus_dir, settings.data_dir),
        "feedback_db": feedback_db,
    })
    return Shelf(name, own, frozenset(shelf.guild_ids), frozenset(shelf.channel_ids), frozenset(shelf.role_ids),
                 frozenset(shelf.uploader_role_ids))


def shelf_named(settings: Settings, name: str) -> Shelf:
    """The shelf called `name`; UnknownShelf naming the known ones otherwise."""
    shelves = configured_shelves(settings)
    for shelf in shelves:
        if shelf.name == name:
            return shelf
    known = ", ".join(shelf.name for shelf in shelves)
    raise UnknownShelf(f"no shelf named {name!r}; the shelves are: {known} (see `verbatim shelf list`)")


def shelf_for(shelves: list[Shelf], guild_id: int | None, channel_ids: Iterable[int],
              role_ids: Iterable[int]) -> Shelf | None:
    """The one shelf an interaction reads: the most specific readable one, the first listed among equals."""
    channel_ids, role_ids = frozenset(channel_ids), frozenset(role_ids)
    readable = [shelf for shelf in shelves if shelf.readable_in(guild_id, channel_ids, role_ids)]
    # max() keeps the first of equal keys: configuration order breaks ties.
    return max(readable, key=lambda shelf: shelf.specificity, default=None)


def served_guilds(settings: Settings) -> frozenset[int]:
    """Every server some configured shelf is read in."""
    return frozenset(guild for shelf in settings.shelves.values() for guild in shelf.guild_ids)


def describe(shelf: Shelf) -> dict:
    """What `verbatim shelf list` shows: paths, readers and, when built, the number of documents."""
    try:
        documents = store.Manifest.read(store.current_generation(shelf.settings.index_dir)).documents
    except VerbatimError:
        documents = None  # not built yet, or damaged: `index status --shelf` says which
    return {
        "name": shelf.name,
        "corpus": str(shelf.settings.corpus_dir),
        "index": str(shelf.settings.index_dir),
        "feedback": str(shelf.settings.feedback_db),
        "guild_ids": None if shelf.guild_ids is None else sorted(shelf.guild_ids),
        "channel_ids": sorted(shelf.channel_ids),
        "role_ids": sorted(shelf.role_ids),
        "uploader_role_ids": sorted(shelf.uploader_role_ids),
        "documents": documents,
    }


def readers_line(shelf: Shelf) -> str:
    """Who may read a shelf, in words."""
    if shelf.guild_ids is None:
        return "every allowed server"
    if not shelf.guild_ids:
        return "the command line only"
    parts = [f"servers {', '.join(map(str, sorted(shelf.guild_ids)))}"]
    if shelf.channel_ids:
        parts.append(f"channels {', '.join(map(str, sorted(shelf.channel_ids)))}")
    if shelf.role_ids:
        parts.append(f"roles {', '.join(map(str, sorted(shelf.role_ids)))}")
    return "; ".join(parts)
