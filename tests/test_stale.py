"""A quote is shown only while its file still says it: files edited, truncated, deleted or renamed
after the build are caught before the answer is shown (bot/answering/freshness.py)."""

import os
import sqlite3
import time
from contextlib import closing

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from bot.answering import freshness
from bot.answering.answer import Answerer
from bot.answering.freshness import Freshness, rebuild_command
from bot.cli.main import EXIT_NOT_ANSWERED, EXIT_OK, main
from bot.cli.render import render_json, render_text
from bot.shelves.shelves import shelf_named
from config import load_settings
from index.build import build_index
from index.errors import Unreadable
from index.sources.load import CorpusFile, read_document
from index.sources.web import WEB_DB, store_for
from index.storage import store
from tests.conftest import ANSWER_ALWAYS, make_settings, write_corpus
from tests.documents import make_docx
from tests.web_server import Site, serve

POLICY = (
    "Shipping\n\n"
    "Orders leave our warehouse in Leipzig within two business days of payment.\n\n"
    "Returns\n\n"
    "You may return any unused item within 28 days of delivery for a full refund.\n\n"
    "Gift cards\n\n"
    "Gift cards never expire and can be spent on anything in the shop.\n"
)
RETURNS = "You may return any unused item within 28 days of delivery for a full refund."
QUESTION = "How many days do I have to return an item for a refund?"


@pytest.fixture
def policy(tmp_path):
    write_corpus(tmp_path, {"policy.txt": POLICY, "other.txt": "The shop's cat is called Biscuit.\n"})
    settings = make_settings(tmp_path, **ANSWER_ALWAYS)
    build_index(settings)
    return settings, Answerer(settings)


def current_text(settings, source):
    """The file's text now, as a build would read it; None if a build would skip it."""
    path = settings.corpus_dir / source
    try:
        return read_document(CorpusFile(path, source), 10**7).text
    except Unreadable:
        return None


def assert_every_shown_quote_is_in_its_file(settings, answer):
    for quote in [*answer.quotes, *([answer.closest] if answer.closest else [])]:
        text = current_text(settings, quote.source)
        assert text is not None and text[quote.start : quote.end] == quote.text
        assert quote.line == text.count("\n", 0, quote.start) + 1


def test_an_unchanged_index_answers_as_before_with_no_note(policy):
    settings, answerer = policy
    answer = answerer.answer(QUESTION, top=1)
    assert answer.answered and answer.quotes[0].text == RETURNS and answer.stale == ()
    assert "stale" not in answer.to_json() and "out of date" not in render_text(answer)


def test_an_edited_figure_is_never_quoted_and_the_answer_says_the_index_is_stale(policy):
    settings, answerer = policy
    path = settings.corpus_dir / "policy.txt"
    path.write_text(POLICY.replace("28 days", "30 days"), encoding="utf-8")
    answer = answerer.answer(QUESTION, top=1)
    assert not answer.answered and answer.quotes == () and answer.closest is None
    assert answer.stale == ("policy.txt",)
    command = f"verbatim index build --corpus {settings.corpus_dir} --index {settings.index_dir}"
    assert answer.rebuild == command
    assert render_text(answer).endswith(
        f"Index is out of date: policy.txt changed since it was indexed \N{EM DASH} run `{command}`\n")
    assert '"stale": ["policy.txt"]' in render_json(answer)
    # With more quotes, those still in their files are shown; never the old figure.
    answer = answerer.answer(QUESTION, top=3)
    assert all("28 days" not in quote.text for quote in answer.quotes)
    assert_every_shown_quote_is_in_its_file(settings, answer)


def test_an_unchanged_quote_in_an_edited_file_is_found_where_it_now_is(policy):
    settings, answerer = policy
    before = answerer.answer(QUESTION, top=1).quotes[0]
    added = "Updated in March.\n\nStore policy\n\n"
    (settings.corpus_dir / "policy.txt").write_text(added + POLICY, encoding="utf-8")
    answer = answerer.answer(QUESTION, top=1)
    quote = answer.quotes[0]
    assert answer.answered and quote.text == RETURNS and answer.stale == ("policy.txt",)
    assert (quote.start, quote.end, quote.line) == (before.start + len(added), before.end + len(added), before.line + 4)
    assert_every_shown_quote_is_in_its_file(settings, answer)


@pytest.mark.parametrize("change", ["truncate", "empty", "delete", "rename", "replace by a directory"])
def test_a_truncated_deleted_or_renamed_file_has_its_quotes_withheld(policy, change):
    settings, answerer = policy
    path = settings.corpus_dir / "policy.txt"
    if change == "truncate":
        path.write_text(POLICY[: POLICY.index("28 days")], encoding="utf-8")
    elif change == "empty":
        path.write_text("", encoding="utf-8")
    elif change == "delete":
        path.unlink()
    elif change == "rename":
        path.rename(settings.corpus_dir / "refunds.txt")
    else:
        path.unlink()
        path.mkdir()
    answer = answerer.answer(QUESTION)
    assert "policy.txt" in answer.stale
    assert all("28 days" not in quote.text for quote in answer.quotes)
    if change != "truncate":  # what is left of a truncated file may still be quoted
        assert all(quote.source != "policy.txt" for quote in answer.quotes)
    assert_every_shown_quote_is_in_its_file(settings, answer)


def test_touching_a_file_without_changing_it_is_not_stale(policy):
    settings, answerer = policy
    before = answerer.answer(QUESTION, top=1)
    later = time.time() + 60
    os.utime(settings.corpus_dir / "policy.txt", (later, later))
    answer = answerer.answer(QUESTION, top=1)
    assert answer.stale == () and answer.quotes == before.quotes


def test_a_settled_file_whose_size_and_mtime_are_as_indexed_is_not_read_again(tmp_path, monkeypatch):
    write_corpus(tmp_path, {"policy.txt": POLICY})
    path = tmp_path / "corpus" / "policy.txt"
    os.utime(path, (time.time() - 3600, time.time() - 3600))
    settings = make_settings(tmp_path, **ANSWER_ALWAYS)
    build_index(settings)
    answerer = Answerer(settings)
    hashed = []
    real_hash = freshness.regular_file_sha256
    monkeypatch.setattr(freshness, "regular_file_sha256", lambda *args: hashed.append(args) or real_hash(*args))
    answer = answerer.answer(QUESTION, top=1)
    assert answer.answered and answer.stale == () and hashed == []
    os.utime(path)  # touched now: its mtime no longer vouches for it, so it is hashed (and found unchanged)
    answer = answerer.answer(QUESTION, top=1)
    assert answer.answered and answer.stale == () and len(hashed) == 1
    os.utime(path, (time.time() - 60, time.time() - 60))  # another settled mtime: hashed once, then remembered
    for _ in range(2):
        answer = answerer.answer(QUESTION, top=1)
    assert answer.answered and answer.stale == () and len(hashed) == 2


def test_the_index_records_a_settled_mtime_and_not_a_recent_one(tmp_path):
    write_corpus(tmp_path, {"old.txt": "An old note about the garden shed.\n", "new.txt": "A new note about the roof.\n"})
    old = tmp_path / "corpus" / "old.txt"
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    settings = make_settings(tmp_path)
    build_index(settings)
    with closing(store.open_metadata(store.current_generation(settings.index_dir))) as connection:
        assert store.indexed_file(connection, "old.txt").mtime_ns == old.stat().st_mtime_ns
        assert store.indexed_file(connection, "new.txt").mtime_ns == 0  # may still change within its tick


def test_an_extracted_document_is_re_extracted_once_it_changed(tmp_path):
    paragraphs = [(0, "Returns"), (0, RETURNS), (0, "Gift cards never expire and can be spent on anything.")]
    write_corpus(tmp_path, {"policy.docx": make_docx(paragraphs)})
    settings = make_settings(tmp_path, **ANSWER_ALWAYS)
    build_index(settings)
    answerer = Answerer(settings)
    before = answerer.answer(QUESTION, top=1).quotes[0]
    (tmp_path / "corpus" / "policy.docx").write_bytes(make_docx([(0, "Policy of 2027"), *paragraphs]))
    moved = answerer.answer(QUESTION, top=1)
    assert moved.quotes[0].text == RETURNS and moved.quotes[0].start > before.start and moved.stale == ("policy.docx",)
    assert_every_shown_quote_is_in_its_file(settings, moved)
    (tmp_path / "corpus" / "policy.docx").write_bytes(make_docx([(0, "Returns"), (0, RETURNS.replace("28", "30"))]))
    gone = answerer.answer(QUESTION, top=1)
    assert not gone.answered and gone.quotes == () and gone.stale == ("policy.docx",)


def test_a_web_page_is_checked_against_its_stored_copy_without_fetching(tmp_path):
    site = Site()
    site.html("/policy", "Policy", ["Orders leave our warehouse in Leipzig within two business days.", RETURNS])
    server = serve(site)
    try:
        (tmp_path / "corpus").mkdir()
        settings = make_settings(tmp_path, web_delay_seconds=0, web_timeout_seconds=0.5, **ANSWER_ALWAYS)
        web = store_for(settings)
        web.add(site.base + "/policy", 0)
        web.close()
        build_index(settings)
        answerer = Answerer(settings)
        assert answerer.answer(QUESTION, top=1).quotes[0].text == RETURNS
        fetched = len(site.requests)
        # A later build stored a newer copy of the page, but never published an index of it.
        with closing(sqlite3.connect(settings.index_dir / WEB_DB)) as connection, connection:
            connection.execute("UPDATE pages SET text = replace(text, '28 days', '30 days'), sha256 = 'newer'")
        answer = answerer.answer(QUESTION, top=1)
        assert not answer.answered and answer.stale == (site.base + "/policy",)
        assert len(site.requests) == fetched
    finally:
        site.stopped.set()
        server.shutdown()


def test_the_rebuild_command_names_the_shelf_or_the_corpus_and_index(tmp_path):
    settings = make_settings(tmp_path)
    assert rebuild_command(settings) == (
        f"verbatim index build --corpus {settings.corpus_dir} --index {settings.index_dir}")
    own = load_settings(corpus_dir=tmp_path / "corpus")
    assert rebuild_command(own) == f"verbatim index build --corpus {own.corpus_dir}"
    spaced = load_settings(corpus_dir=tmp_path / "my docs")
    assert rebuild_command(spaced) == f"verbatim index build --corpus '{tmp_path / 'my docs'}'"
    shelved = load_settings(shelves={"handbook": {"corpus_dir": str(tmp_path / "handbook")}})
    assert rebuild_command(shelf_named(shelved, "handbook").settings) == "verbatim index build --shelf handbook"


def test_ask_says_the_index_is_stale_and_exits_as_for_any_refusal(policy, capsys, monkeypatch):
    settings, _ = policy
    for name, value in ANSWER_ALWAYS.items():
        monkeypatch.setenv(f"VERBATIM_{name.upper()}", str(value))
    flags = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    assert main(["ask", QUESTION, "--top", "1", *flags]) == EXIT_OK
    capsys.readouterr()
    (settings.corpus_dir / "policy.txt").write_text(POLICY.replace("28 days", "30 days"), encoding="utf-8")
    assert main(["ask", QUESTION, "--top", "1", *flags]) == EXIT_NOT_ANSWERED
    out = capsys.readouterr().out
    assert "28 days" not in out
    assert f"run `verbatim index build --corpus {settings.corpus_dir} --index {settings.index_dir}`" in out


# Edits: at a fraction of the text, delete some characters and insert others (any text, newlines,
# byte-order marks and NULs included).
EDITS = st.lists(st.tuples(st.floats(0, 1), st.integers(0, 40), st.text(max_size=30)), max_size=4)


@pytest.fixture(scope="module")
def indexed_policy(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("property")
    write_corpus(tmp_path, {"policy.txt": POLICY})
    settings = make_settings(tmp_path, **ANSWER_ALWAYS)
    build_index(settings)
    answer = Answerer(settings).answer(QUESTION, top=3)
    assert len(answer.quotes) >= 2
    return settings, answer.quotes, store.current_generation(settings.index_dir)


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=EDITS)
def test_no_edit_after_indexing_yields_a_quote_unlike_the_file(indexed_policy, edits):
    settings, quotes, generation = indexed_policy
    text = POLICY
    for at, deleted, inserted in edits:
        cut = int(at * len(text))
        text = text[:cut] + inserted + text[cut + deleted :]
    (settings.corpus_dir / "policy.txt").write_bytes(text.encode("utf-8"))
    checked = Freshness(settings).check(quotes, generation)
    now = current_text(settings, "policy.txt")
    for quote in checked.quotes:
        assert now[quote.start : quote.end] == quote.text
        assert quote.line == now.count("\n", 0, quote.start) + 1
    # Withheld only when gone: a quote whose exact text is still there is shown.
    assert [q.text for q in checked.quotes] == [q.text for q in quotes if now is not None and q.text in now]
    assert checked.stale == (() if text == POLICY else ("policy.txt",))


def test_discord_shows_the_note_with_reindex_and_no_server_path():
    from bot.discord.render import answer_embed
    from bot.types import Answer, Quote

    quote = Quote(RETURNS, "policy.txt", 10, 10 + len(RETURNS), 3, 1.2)
    command = "verbatim index build --corpus /srv/docs"
    answered = answer_embed(Answer(QUESTION, True, (quote,), 5.0, 0.9, stale=("policy.txt",), rebuild=command), 0.5)
    refused = answer_embed(Answer(QUESTION, False, (), 5.0, 0.1, stale=("policy.txt",), rebuild=command), 0.5)
    for embed in (answered, refused):
        assert "Index is out of date: policy.txt changed since it was indexed" in embed.description
        assert "/reindex" in embed.description and "/srv/docs" not in embed.description
    assert answered.fields[0].name == "policy.txt:3"
