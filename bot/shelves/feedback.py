"""Answers shown in Discord and the 👍/👎 people give them, in SQLite; exported as JSONL.

Voters are stored as an HMAC of their Discord id under a per-install secret kept
beside the database: Discord ids are public, so a plain or publicly salted hash
could be matched back to people. Rows older than the retention period are deleted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

from bot.types import Answer, Quote
from index.errors import VerbatimError

SECRET_BYTES = 32

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    message_id INTEGER PRIMARY KEY, question TEXT NOT NULL, quotes TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    message_id INTEGER NOT NULL, user_hash TEXT NOT NULL, vote INTEGER NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (message_id, user_hash)
);
CREATE TABLE IF NOT EXISTS unanswered (
    question TEXT NOT NULL, outcome TEXT NOT NULL, created_at REAL NOT NULL
);
"""


EXPORT_QUERY = (
    "SELECT a.question, a.quotes, f.vote, f.user_hash, f.at FROM feedback f "
    "JOIN answers a ON a.message_id = f.message_id ORDER BY f.at"
)


def export_records(path: Path) -> Iterator[dict]:
    """The votes stored at `path`, read-only; none (and no file created) when there is no database yet."""
    if not path.is_file():
        return iter(())
    # mode=ro: exporting must never create or change the database.
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            rows = connection.execute(EXPORT_QUERY).fetchall()
    except sqlite3.DatabaseError as error:
        raise FeedbackUnreadable(f"cannot read the feedback database {path}: {error}") from None
    return _records(rows)


def _records(rows: list[tuple]) -> Iterator[dict]:
    for question, quotes, vote, user_hash, at in rows:
        yield {"question": question, "quotes": json.loads(quotes), "vote": vote, "user_hash": user_hash,
               "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))}


class FeedbackUnreadable(VerbatimError):
    """The feedback database exists but can't be read (damaged, or not a feedback database)."""
class DamagedSecret(VerbatimError):
    """The feedback secret file exists but does not hold a secret."""


def secret_path(database: Path) -> Path:
    """Where the per-install secret for `database` lives: beside it."""
    return database.with_name(database.name + ".key")


def load_secret(path: Path) -> bytes:
    """The secret in `path`, created (random, readable by its owner only) on first use."""
    if not path.exists():
        # Written whole under a temporary name, then linked: a reader never sees a half-written secret.
        draft = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(SECRET_BYTES) + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process made one first: use theirs
        finally:
            draft.unlink()
    try:
        secret = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (ValueError, UnicodeDecodeError):
        secret = b""
    if len(secret) < SECRET_BYTES:
        raise DamagedSecret(
            f"{path} does not hold a feedback secret: delete it to start a new one "
            "(votes stored before then will no longer be matched to the same people)"
        )
    return secret


class FeedbackStore:
    """Remembers what each bot message answered, and each user's vote on it (one per user)."""

    def __init__(self, path: Path, retention_days: float = 90, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, check_same_thread=False)
        self._connection.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._secret_path = secret_path(path)
        self._secret: bytes | None = None
        self._retention_seconds = retention_days * 86400
        self._clock = clock
        with self._lock, self._connection:
            self._forget_old()

    def remember(self, message_id: int, answer: Answer) -> None:
        """Record the answer a message shows, for its buttons and for export."""
        quotes = json.dumps(answer.to_json()["quotes"], ensure_ascii=False)
        with self._lock, self._connection:
            self._forget_old()
            self._connection.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?)", (message_id, answer.question, quotes, self._clock())
            )

    def remember_unanswered(self, answer: Answer) -> None:
        """Record a question the documents did not answer (refused or "not sure"): the gaps to fill.
        Only its text and outcome, as an answer's question is kept; nothing about who asked."""
        with self._lock, self._connection:
            self._forget_old()
            self._connection.execute("INSERT INTO unanswered VALUES (?, ?, ?)",
                                     (answer.question, answer.outcome, self._clock()))

    def _forget_old(self) -> None:
        cutoff = self._clock() - self._retention_seconds
        self._connection.execute("DELETE FROM answers WHERE created_at < ?", (cutoff,))
        self._connection.execute("DELETE FROM unanswered WHERE created_at < ?", (cutoff,))
        # A vote goes with its answer: without the question it means nothing.
        self._connection.execute(
            "DELETE FROM feedback WHERE at < ? OR message_id NOT IN (SELECT message_id FROM answers)", (cutoff,)
        )

    def quotes(self, message_id: int) -> list[Quote] | None:
        """The quotes a message showed, or None if it is unknown."""
        with self._lock:
            row = self._connection.execute("SELECT quotes FROM answers WHERE message_id = ?", (message_id,)).fetchone()
        return None if row is None else [Quote(**record) for record in json.loads(row[0])]

    def vote(self, message_id: int, user_id: int, vote: int) -> None:
        """Store +1 or -1 from a user (keyed by an HMAC: the export holds no Discord ids)."""
        with self._lock, self._connection:
            if self._secret is None:
                self._secret = load_secret(self._secret_path)
            user_hash = hmac.new(self._secret, str(user_id).encode(), hashlib.sha256).hexdigest()[:16]
            self._connection.execute(
                "INSERT OR REPLACE INTO feedback VALUES (?, ?, ?, ?)", (message_id, user_hash, vote, self._clock())
            )

    def export(self) -> Iterator[dict]:
        """Every vote with its question and quotes, oldest first."""
        with self._lock:
            rows = self._connection.execute(EXPORT_QUERY).fetchall()
        return _records(rows)

    def close(self) -> None:
        self._connection.close()
