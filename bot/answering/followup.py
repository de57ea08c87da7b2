"""Follow-up questions ("and when was that?") read with the turn before: deterministic, no language model.

A follow-up that needs the question before it (an elliptical "and on weekends?", a
pronoun without its subject, a fragment) is searched with the key words of that
question, preferring the documents its answer cited; the reader is told which earlier
question it was read with. A question that stands on its own is searched as asked.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.answering.answer import check_question
from bot.answering.locate import answer_located
from bot.types import Answer
from index.search.lexical import STOPWORDS, tokenize

# Words that carry no subject of their own in a follow-up ("tell me more", "what else happened?").
FILLERS = frozenset(
    """also else exactly really please tell okay ok thanks thank happen happened happens mean meant thing things
    one ones kind sort way get got say said know"""
    .split()
)
# Words that point back at the previous turn's subject, unless the question names it first.
BACK_REFERENCES = frozenset("it its they them their theirs he him his she her hers".split())
# An object pronoun never means the subject of its own clause ("why did the unions reject it?").
OBJECT_PRONOUNS = frozenset("him them".split())
DEMONSTRATIVES = frozenset("that this those these".split())
# After one of these "that" is a pronoun ("does that apply?", "after that?"), not a clause's opening.
_PREPOSITIONS = frozenset("about for after before with without on in at from to of by like than into over under".split())
_BEFORE_PRONOUN_THAT = _PREPOSITIONS | frozenset(
    "is was are were does do did will would can could should has have had may might must what who when where which why how"
    .split()
)
# A demonstrative followed by one of these is a pronoun ("does that apply?", "is this true?").
_PRONOUN_FOLLOWERS = frozenset(
    """is was are were s does do did will would can could should has have had mean means meant apply applies
    include includes cover covers cost costs happen happened work works count change changed still also too
    really always only""".split()
)
# "Is there…?" asks whether something exists; "get there" points back at a place.
_EXISTENTIAL_BEFORE = frozenset("is are was were be been isn't aren't wasn't weren't".split())
# Openers of an elliptical question: "and on weekends?", "what about Fridays?", "how about macOS?".
_ELLIPTICAL_OPENER = re.compile(r"^\W*(and|but|or|so|plus|also|then|(what|how) about|what of|same (for|with))\b", re.I)
# Markers that ask for more of the same: "who else?", "…on Fridays too?".
_ADDITIVE = re.compile(r"\b(else|also)\b|\b(too|as well|either|instead)\W*$", re.I)
# A question opened with a preposition is a fragment of the last one: "for visitors?", "on weekends?".
_FRAGMENT_OPENER = re.compile(
    r"^\W*(on|for|in|at|during|with|without|after|before|from|by|under|over|to|per|via|outside|inside)\b", re.I)
# "it" as an empty subject: "is it possible to…", "how long does it take to…".
_EMPTY_IT = re.compile(r"\b(is|was|isn't|wasn't)\s+it\s+\w+\s+(to|that|if|whether)\b|\bit\s+(takes?|took|costs?)\s+(\w+\s+){0,3}?to\b",
                       re.I)
# A question that opens as one (or asks outright) rather than as a fragment ("Fridays?").
_OPENS_AS_QUESTION = re.compile(
    r"^\W*(what|whats|what's|who|whom|whose|when|where|which|why|how|is|isn't|are|aren't|was|were|do|does|did|"
    r"don't|doesn't|can|can't|could|will|would|should|shall|may|might|must|has|have|had|tell|explain|describe|"
    r"list|show|give|name)\b",
    re.I,
)
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


def needs_previous(question: str, min_words: int = 2) -> bool:
    """Whether `question` can only be read with the one before: it opens elliptically ("and on weekends?",
    "what about Fridays?"), asks for more of the same ("who else?", "…too?"), is a fragment ("for visitors?",
    or fewer than `min_words` content words without a question's opening), has no content word of its own
    ("why?"), or points back at a subject it does not name ("who praised that?", "did he vote for it?").
    A question with its own subject and no back reference stands alone ("Is there a gym discount?")."""
    if _ELLIPTICAL_OPENER.match(question) or _ADDITIVE.search(question) or _FRAGMENT_OPENER.match(question):
        return True
    own = content_words(question)
    if not own or (len(own) < min_words and not _OPENS_AS_QUESTION.match(question)):
        return True
    return points_back(question)


def points_back(question: str) -> bool:
    """Whether `question` has a pronoun whose subject it does not name itself: "did he vote for it?" does,
    "how do employees report their sick days?" and "is it possible to pay by card?" do not."""
    words = [word.lower() for word in _WORD.findall(question)]
    if "same" in words or (words and words[-1] == "then"):
        return True  # "is the same true for…?", "what happened then?"
    for at, word in enumerate(words):
        before = words[at - 1] if at else None
        following = words[at + 1] if at + 1 < len(words) else None
        if word in BACK_REFERENCES:
            if word == "it" and _EMPTY_IT.search(question):
                continue
            # "it" or "her" right after a verb or preposition is an object too ("reject it", "for it").
            is_object = word in OBJECT_PRONOUNS or (word in ("it", "her") and before is not None and (
                bool(content_words(before)) or before in _PREPOSITIONS))
            # A subject or possessive may mean a word the question names before it ("employees … their").
            if is_object or not _names_something(words[:at]):
                return True
        elif word in DEMONSTRATIVES:
            # "That" after a verb, adjective or noun opens a clause ("say that dogs…", "a form that I…");
            # "this", "these" and "those" always point at something.
            if word != "that" or before is None or following is None or before in _BEFORE_PRONOUN_THAT \
                    or following in _PRONOUN_FOLLOWERS:
                return True
        elif word == "there":
            existential = (at > 0 and words[at - 1] in _EXISTENTIAL_BEFORE) or following in _EXISTENTIAL_BEFORE
            if not existential:
                return True  # "how do I get there?"
    return False


def _names_something(words: list[str]) -> bool:
    """Whether `words` hold a content word that could be a pronoun's subject ("how long" does not)."""
    return bool(content_words(" ".join(word for at, word in enumerate(words) if not (at and words[at - 1] == "how"))))


def read_followup(question: str, previous: Turn | None, min_words: int = 2, max_chars: int | None = None) -> Reading:
    """`question` as a follow-up to `previous`: if it needs the earlier question (`needs_previous`), it is
    searched with `previous`'s key words and prefers the documents `previous` cited; otherwise as asked."""
    question = question.strip()
    if previous is None or not needs_previous(question, min_words):
        return Reading(question)
    own = content_words(question)
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
