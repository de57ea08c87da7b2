"""Answers shown in Discord and the 👍/👎 people give them, in SQLite; exported as JSONL."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from bot.types import Answer, Quote
from index.errors import VerbatimError

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    message_id INTEGER PRIMARY KEY, question TEXT NOT NULL, quotes TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    message_id INTEGER NOT NULL, user_hash TEXT NOT NULL, vote INTEGER NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (message_id, user_hash)
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


class FeedbackStore:
    """Remembers what each bot message answered, and each user's vote on it (one per user)."""

    def __init__(self, path: Path, salt: str = "verbatim") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, check_same_thread=False)
        self._connection.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._salt = salt.encode()

    def remember(self, message_id: int, answer: Answer) -> None:
        """Record the answer a message shows, for its buttons and for export."""
        quotes = json.dumps(answer.to_json()["quotes"], ensure_ascii=False)
        with self._lock, self._connection:
            self._connection.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?)", (message_id, answer.question, quotes, time.time())
            )

    def quotes(self, message_id: int) -> list[Quote] | None:
        """The quotes a message showed, or None if it is unknown."""
        with self._lock:
            row = self._connection.execute("SELECT quotes FROM answers WHERE message_id = ?", (message_id,)).fetchone()
        return None if row is None else [Quote(**record) for record in json.loads(row[0])]

    def vote(self, message_id: int, user_id: int, vote: int) -> None:
        """Store +1 or -1 from a user (hashed: the export holds no Discord ids)."""
        user_hash = hashlib.sha256(self._salt + str(user_id).encode()).hexdigest()[:16]
        with self._lock, self._connection:
            self._connection.execute(
                "INSERT OR REPLACE INTO feedback VALUES (?, ?, ?, ?)", (message_id, user_hash, vote, time.time())
            )

    def export(self) -> Iterator[dict]:
        """Every vote with its question and quotes, oldest first."""
        with self._lock:
            rows = self._connection.execute(EXPORT_QUERY).fetchall()
        return _records(rows)

    def close(self) -> None:
        self._connection.close()
