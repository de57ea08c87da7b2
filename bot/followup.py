"""Follow-up questions ("and when was that?") read with the turn before: deterministic, no language model.

A follow-up with too few content words of its own is searched with the key words
of the question before it, preferring the documents that answer cited; the reader
is told which earlier question it was read with. A question that stands on its
own is searched as asked.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.answer import check_question
from bot.locate import answer_located
from bot.types import Answer
from index.lexical import STOPWORDS, tokenize

# Words that carry no subject of their own in a follow-up ("tell me more", "what else happened?").
FILLERS = frozenset(
    """also else exactly really please tell okay ok thanks thank happen happened happens mean meant thing things
    one ones kind sort way get got say said know"""
    .split()
)
# Words that point back at the previous turn's subject.
BACK_REFERENCES = frozenset("it its that this those these they them their he him his she her there then".split())
# At most this many key words are carried from turn to turn: the subject, not the whole history.
MAX_CARRIED = 8
_WORD = re.compile(r"\w+(?:['’]\w+)*")
# A message that does not mention the bot asks only if it reads as a question ("thanks!" does not).
_QUESTION_START = re.compile(
    r"^\W*(and|what|whats|what's|who|whom|whose|when|where|which|why|how|is|are|was|were|do|does|did|"
    r"can|could|will|would|should|has|have|had)\b",
    re.I,
)


@dataclass(frozen=True)
class Turn:
    """A question as asked and its answer; `read_with` and `carried` say how a follow-up was read."""

    question: str
    answer: Answer
    read_with: str | None = None
    carried: tuple[str, ...] = ()

    @property
    def key_words(self) -> tuple[str, ...]:
        """The words that name this turn's subject: its own content words, then those it carried."""
        return _distinct([*content_words(self.question), *self.carried])[:MAX_CARRIED]

    @property
    def cited(self) -> tuple[str, ...]:
        """The documents its answer quoted, best first (none for a refusal)."""
        return tuple(dict.fromkeys(quote.source for quote in self.answer.quotes))


@dataclass(frozen=True)
class Reading:
    """How to search a question: the retrieval text, documents to prefer, and the earlier question used."""

    question_text: str
    prefer_sources: tuple[str, ...] = ()
    read_with: str | None = None
    carried: tuple[str, ...] = ()


def content_words(text: str) -> list[str]:
    """The words of `text` that name things, as written, one per stem, in order."""
    words = [word for word in _WORD.findall(text) if word.lower() not in STOPWORDS and word.lower() not in FILLERS]
    return _distinct(words)


def read_followup(question: str, previous: Turn | None, min_words: int = 2, max_chars: int | None = None) -> Reading:
    """`question` as a follow-up to `previous`: with fewer than `min_words` content words of its own
    (one more if it points back with "it", "that", "they"…), it is searched with `previous`'s key words
    and prefers the documents `previous` cited; otherwise it is searched as asked."""
    question = question.strip()
    if previous is None:
        return Reading(question)
    own = content_words(question)
    points_back = any(word.lower() in BACK_REFERENCES for word in _WORD.findall(question))
    if len(own) >= min_words + points_back:
        return Reading(question)
    stems = {stem for word in own for stem in tokenize(word)}
    carried = tuple(word for word in previous.key_words if not set(tokenize(word)) <= stems)
    text = f"{question} {' '.join(carried)}".strip()
    if not carried or (max_chars is not None and len(text) > max_chars):
        return Reading(question)
    return Reading(text, previous.cited, previous.read_with or previous.question, carried)


def answer_followup(
    answerer, question: str, previous: Turn | None, top: int | None = None, sources: Sequence[str] | None = None
) -> Turn:
    """Answer `question` read as a follow-up to `previous` (located, as every interface shows it), from
    `sources` only if given; the answer names the question as asked."""
    settings = answerer.settings
    check_question(question.strip(), settings.max_question_chars)  # the user's own words must make a question
    reading = read_followup(question, previous, settings.followup_min_terms, settings.max_question_chars)
    answer = answer_located(answerer, reading.question_text, top, sources=sources, prefer_sources=reading.prefer_sources)
    return Turn(question.strip(), replace(answer, question=question.strip()), reading.read_with, reading.carried)


def reads_as_question(text: str) -> bool:
    """Whether a message reads as a question: it has a question mark or starts like one."""
    return "?" in text or bool(_QUESTION_START.match(text))


class Conversations:
    """The last turn of each conversation (a Discord thread, an answer replied to), the least recent forgotten first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._turns: OrderedDict[int, Turn] = OrderedDict()

    def get(self, key: int) -> Turn | None:
        """The last turn under `key`, or None."""
        turn = self._turns.get(key)
        if turn is not None:
            self._turns.move_to_end(key)
        return turn

    def remember(self, turn: Turn, *keys: int) -> None:
        """Make `turn` the last one under each of `keys`."""
        for key in keys:
            self._turns[key] = turn
            self._turns.move_to_end(key)
        while len(self._turns) > self._capacity:
            self._turns.popitem(last=False)

    def __contains__(self, key: int) -> bool:
        return key in self._turns

    def __len__(self) -> int:
        return len(self._turns)


def _distinct(words: list[str]) -> list[str]:
    """`words` without repeats of a stem ("troops", "troop"), first spelling kept."""
    seen: set[str] = set()
    kept = []
    for word in words:
        stems = tuple(tokenize(word)) or (word.lower(),)
        if stems not in seen:
            seen.add(stems)
            kept.append(word)
    return kept
