"""What a moderator needs to improve a shelf: unanswered questions, quotes voted down, their documents."""

from __future__ import annotations

import json

import discord
import discord.ext.test as dpytest
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.answering.answer import Answerer
from bot.cli.main import EXIT_OK, main
from bot.discord.bot import AnswerView, VerbatimBot
from bot.discord.render import EMBED_TOTAL_MAX, FIELD_VALUE_MAX
from bot.shelves.feedback import FeedbackStore
from bot.shelves.report import feedback_report, question_key, report_embed
from bot.types import Answer, Quote
from tests.conftest import built_corpus, copy_built, make_settings
from tests.discord_fakes import FakeInteraction, check_embed, dispatch, offline

EGGS = Quote("The queen lays up to two thousand eggs a day.", "bees.txt", 58, 104, 1, 1.2)
VEIL = Quote("Smoke calms the bees.", "guide/smoke.md", 0, 21, 3, 1.0)


def refused(question: str) -> Answer:
    return Answer(question, False, (), 3.0)


def not_sure(question: str) -> Answer:
    return Answer(question, False, (), 3.0, closest=VEIL, not_sure=True)


def test_unanswered_questions_are_counted_as_one_whatever_their_case_and_spacing(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite")
    for answer in (refused("Who is the king?"), refused("who is  the king"), not_sure("Who is the King?"),
                   refused("What do wasps eat?")):
        store.remember_unanswered(answer)
    store.close()
    (first, second) = feedback_report(tmp_path / "f.sqlite")["unanswered"]
    assert first == {"question": "Who is the King?", "times": 3, "refused": 2, "not_sure": 1}  # as last asked
    assert second["question"] == "What do wasps eat?" and second["times"] == 1


def test_unanswered_questions_expire_with_the_feedback(tmp_path):
    now = [1_000_000.0]
    store = FeedbackStore(tmp_path / "f.sqlite", retention_days=90, clock=lambda: now[0])
    store.remember_unanswered(refused("Old?"))
    now[0] += 91 * 86400
    store.remember_unanswered(refused("New?"))
    store.close()
    assert [item["question"] for item in feedback_report(tmp_path / "f.sqlite")["unanswered"]] == ["New?"]


def test_down_voted_quotes_and_their_documents_come_worst_first(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite")
    store.remember(1, Answer("How many eggs?", True, (EGGS, VEIL), 3.0))
    store.remember(2, Answer("What calms bees?", True, (VEIL,), 3.0))
    store.vote(1, 10, -1)
    store.vote(1, 11, +1)
    store.vote(2, 10, -1)
    store.vote(2, 12, -1)
    store.close()
    report = feedback_report(tmp_path / "f.sqlite")
    assert [(q["source"], q["down"], q["up"]) for q in report["down_voted"]] == [
        ("guide/smoke.md", 3, 1), ("bees.txt", 1, 1)]
    assert report["down_voted"][0]["text"] == VEIL.text and report["down_voted"][0]["citation"] == "guide/smoke.md:3"
    assert report["documents"] == [{"source": "guide/smoke.md", "down": 3, "quotes": 1},
                                   {"source": "bees.txt", "down": 1, "quotes": 1}]


def test_a_report_never_creates_or_changes_the_database(tmp_path):
    assert feedback_report(tmp_path / "none.sqlite") == {"unanswered": [], "down_voted": [], "documents": []}
    assert not (tmp_path / "none.sqlite").exists()


@given(st.text(max_size=40))
def test_a_question_key_ignores_case_spacing_and_final_punctuation(question):
    assert question_key(question) == question_key("  " + question.upper().replace(" ", "\t ") + " ?")


@given(st.lists(st.tuples(st.text(min_size=1, max_size=600), st.integers(1, 10**6), st.integers(0, 3)),
                max_size=30))
def test_the_embed_keeps_within_discord_limits(items):
    report = {
        "unanswered": [{"question": text, "times": n, "refused": n, "not_sure": 0} for text, n, _ in items],
        "down_voted": [{"source": text, "citation": text + ":1", "text": text, "down": n, "up": up}
                       for text, n, up in items],
        "documents": [{"source": text, "down": n, "quotes": 1} for text, n, _ in items],
    }
    embed = report_embed(report, "default")
    check_embed(embed)
    assert len(embed) <= EMBED_TOTAL_MAX and all(len(field.value) <= FIELD_VALUE_MAX for field in embed.fields)


def test_the_command_prints_the_shelf_report(tmp_path, monkeypatch, capsys):
    store = FeedbackStore(tmp_path / "feedback-bees.sqlite")
    store.remember_unanswered(refused("Who is the king?"))
    store.close()
    (tmp_path / "verbatim.toml").write_text('[shelves.bees]\ncorpus_dir = "corpus"\n', encoding="utf-8")
    monkeypatch.setenv("VERBATIM_FEEDBACK_DB", str(tmp_path / "feedback.sqlite"))
    assert main(["feedback", "report", "--shelf", "bees", "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["unanswered"][0]["question"] == "Who is the king?"
    assert main(["feedback", "report", "--shelf", "bees"]) == EXIT_OK
    assert "1x Who is the king? (1 refused)" in capsys.readouterr().out


HIVE = "Honey bees live in hives of about fifty thousand workers. The queen lays up to two thousand eggs a day.\n"


@pytest.fixture(scope="module")
def hive(tmp_path_factory):
    return built_corpus(tmp_path_factory.mktemp("hive"), {"bees.txt": HIVE})


@pytest.fixture
async def bot(tmp_path, hive):
    copy_built(hive, tmp_path)
    settings = make_settings(tmp_path, feedback_db=tmp_path / "feedback.sqlite", discord_owner_ids=[7])
    client = await offline(VerbatimBot(settings, Answerer(settings)))
    client.add_view(AnswerView(client))
    yield client
    await dpytest.empty_queue()
    client.feedback.close()


async def test_a_refused_question_is_recorded_and_reported_to_moderators_only(bot):
    await dispatch(bot, FakeInteraction(bot, "ask", {"question": "Who won the football World Cup in 2022?"}))
    denied = await dispatch(bot, FakeInteraction(bot, "report", {}, user_id=9))
    (reply,) = denied.response.sent
    assert reply.ephemeral and "Manage Server" in reply.content
    moderator = discord.Permissions(manage_guild=True)
    allowed = await dispatch(bot, FakeInteraction(bot, "report", {}, user_id=9, permissions=moderator))
    (reply,) = allowed.response.sent
    assert reply.ephemeral and "1× Who won the football World Cup in 2022? (1 refused)" in reply.embed.fields[0].value
    assert bot.tree.get_command("report").default_permissions == moderator


async def test_an_answered_question_is_not_among_the_unanswered(bot):
    await dispatch(bot, FakeInteraction(bot, "ask", {"question": "How many eggs does the queen lay a day?"}))
    assert feedback_report(bot.settings.feedback_db)["unanswered"] == []


async def test_a_mention_the_documents_do_not_answer_is_recorded_too(bot):
    bot.settings = bot.settings.model_copy(update={"discord_mention_threads": False})  # dpytest has no threads
    await dpytest.message(f"<@{bot.user.id}> Who won the football World Cup in 2022?")
    assert "don't answer" in dpytest.get_message().embeds[0].description
    (item,) = feedback_report(bot.settings.feedback_db)["unanswered"]
    assert item["question"] == "Who won the football World Cup in 2022?" and item["refused"] == 1
