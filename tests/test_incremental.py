"""Incremental rebuilds answer from the new text: every kind of edit, seen by an answerer already running.

Change detection must be by content: a same-size edit ("tuna" -> "fish") has
the same size and, written within the same second, often the same mtime.
"""

from __future__ import annotations

import os

from bot.answering.answer import Answerer
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


def first_quote(answerer: Answerer, question: str):
    answer = answerer.answer(question)
    assert answer.answered, question
    for quote in answer.quotes:  # verbatim: cut from the text the index now holds
        text = answerer.searcher.document_text(answerer.searcher.document_info(quote.source)["id"])
        assert text[quote.start : quote.end] == quote.text
    return answer.quotes[0]


def rewrite(path, text: str) -> None:
    """Write new content keeping the file's size and mtime, as a fast same-second edit does."""
    stat = path.stat()
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_each_kind_of_edit_is_seen_by_an_answerer_already_running(tmp_path):
    write_corpus(tmp_path, {**FILLER, "cat.txt": CAT, "ferry.txt": ROUTE})
    settings = make_settings(tmp_path)
    corpus = settings.corpus_dir
    build_index(settings)
    answerer = Answerer(settings)  # as the bot or `chat` holds one, across every rebuild below
    assert "tuna" in first_quote(answerer, CAT_QUESTION).text
    assert "north pier" in first_quote(answerer, PIER_QUESTION).text

    # A same-size edit.
    edited = CAT.replace("tuna", "fish")
    assert len(edited) == len(CAT)
    rewrite(corpus / "cat.txt", edited)
    summary = build_index(settings)
    assert (summary.changed, summary.up_to_date) == (1, False)
    quote = first_quote(answerer, CAT_QUESTION)
    assert "fish" in quote.text and "tuna" not in quote.text

    # An edit in the middle of a document (same size too); the paragraphs around it keep their places.
    rewrite(corpus / "ferry.txt", ROUTE.replace("north pier", "south quay"))
    assert build_index(settings).changed == 1
    quote = first_quote(answerer, PIER_QUESTION)
    assert "south quay" in quote.text and "north pier" not in quote.text
    assert "at dawn" in first_quote(answerer, "When does the ferry leave the harbour?").text

    # A rename: cited by its new name only.
    (corpus / "cat.txt").rename(corpus / "pets.txt")
    summary = build_index(settings)
    assert (summary.added, summary.removed) == (1, 1)
    quote = first_quote(answerer, CAT_QUESTION)
    assert quote.source == "pets.txt" and "fish" in quote.text
    assert answerer.searcher.document_info("cat.txt") is None

    # A deletion: never quoted again.
    (corpus / "pets.txt").unlink()
    assert build_index(settings).removed == 1
    assert all(quote.source != "pets.txt" for quote in answerer.answer(CAT_QUESTION).quotes)
    assert answerer.searcher.document_info("pets.txt") is None
