"""Counts in words for people: "1 document", "2,000 documents"."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` with thousands separators and `noun` in the right number (`plural`, else noun + "s")."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"
