"""Answers as text for people and JSON for machines."""

from __future__ import annotations

import json

from bot.types import Answer

REFUSAL = "The documents don't answer this question."


def render_text(answer: Answer) -> str:
    """Each quote as a block quote followed by `source:line`."""
    if not answer.answered:
        return refusal_line(answer) + "\n"
    blocks = []
    for quote in answer.quotes:
        quoted = "\n".join("> " + line for line in quote.text.split("\n"))
        blocks.append(f"{quoted}\n  — {quote.citation()}")
    return "\n\n".join(blocks) + "\n"


def refusal_line(answer: Answer) -> str:
    """The refusal, naming the closest passage so the user can check it themselves."""
    if answer.closest is None:
        return REFUSAL
    return f"{REFUSAL} Closest passage: {answer.closest.citation()}"


def render_json(answer: Answer) -> str:
    """One line of JSON in the stable contract."""
    return json.dumps(answer.to_json(), ensure_ascii=False)
