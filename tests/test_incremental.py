"""Incremental rebuilds answer from the new text: every kind of edit, seen by an answerer already running.

Change detection must be by content: a same-size edit ("tuna" -> "fish") has
the same size and, written within the same second, often the same mtime.
"""

from __future__ import annotations

import os

import pytest

from bot.answer import Answerer
from index.build import build_index
from tests.conftest import make_settings, write_corpus

FILLER = {f"doc{n:02d}.txt": f"Document {n} talks about topic number {n} at some length. It has a second sentence too."
          for n in range(12)}
CAT = "The keepers feed the lighthouse cat tuna every evening."
ROUTE = ("The ferry leaves the harbour at dawn.\n\n"
         "Passengers board at the north pier, where the ferry takes on coal from barges.\n\n"
         "The crossing to the island lasts two hours in calm weather.")
CAT_QUESTION = "What do the keepers feed the lighthouse cat?"
PIER_QUESTION = "Where do passengers board the ferry?"


@pytest.fixture
def running(tmp_path):
    """A built index and an answerer started on it, as the bot or `chat` holds one."""
    write_corpus(tmp_path, {**FILLER, "cat.txt": CAT, "ferry.txt": ROUTE})
    settings = make_settings(tmp_path)
    build_index(settings)
    answerer = Answerer(settings)
    assert "tuna" in first_quote(answerer, CAT_QUESTION).text
    assert "north pier" in first_quote(answerer, PIER_QUESTION).text
    return settings, answerer


def first_quote(answerer: Answerer, question: str):
    answer = answerer.answer(question)
    assert answer.answered, question
    for quote in answer.quotes:  # verbatim: cut from the text the index now holds
        text = answerer.searcher.document_text(_document_id(answerer, quote.source))
        assert text[quote.start : quote.end] == quote.text
    return answer.quotes[0]


def _document_id(answerer: Answerer, source: str) -> int:
    return answerer.searcher.document_info(source)["id"]


def rewrite(path, text: str) -> None:
    """Write new content keeping the file's size and mtime, as a fast same-second edit does."""
    stat = path.stat()
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_same_size_edit_is_seen(running):
    settings, answerer = running
    edited = CAT.replace("tuna", "fish")
    assert len(edited) == len(CAT)
    rewrite(settings.corpus_dir / "cat.txt", edited)
    summary = build_index(settings)
    assert (summary.changed, summary.up_to_date) == (1, False)
    quote = first_quote(answerer, CAT_QUESTION)
    assert "fish" in quote.text and "tuna" not in quote.text


def test_an_edit_in_the_middle_of_a_document_is_seen(running):
    settings, answerer = running
    rewrite(settings.corpus_dir / "ferry.txt", ROUTE.replace("north pier", "south quay"))
    assert build_index(settings).changed == 1
    quote = first_quote(answerer, PIER_QUESTION)
    assert "south quay" in quote.text and "north pier" not in quote.text
    # The paragraphs around the edit are still quoted from the new text at their places.
    assert "at dawn" in first_quote(answerer, "When does the ferry leave the harbour?").text


def test_a_deleted_document_is_never_quoted_again(running):
    settings, answerer = running
    (settings.corpus_dir / "cat.txt").unlink()
    assert build_index(settings).removed == 1
    answer = answerer.answer(CAT_QUESTION)
    assert all(quote.source != "cat.txt" for quote in answer.quotes)
    assert answerer.searcher.document_info("cat.txt") is None


def test_a_renamed_document_is_cited_by_its_new_name_only(running):
    settings, answerer = running
    (settings.corpus_dir / "cat.txt").rename(settings.corpus_dir / "pets.txt")
    summary = build_index(settings)
    assert (summary.added, summary.removed) == (1, 1)
    quote = first_quote(answerer, CAT_QUESTION)
    assert quote.source == "pets.txt" and "tuna" in quote.text
    assert answerer.searcher.document_info("cat.txt") is None
