import json
import shutil
from pathlib import Path

import pytest

from bot.answering.answer import Answerer
from bot.answering.followup import (
    Conversations, Turn, answer_followup, content_words, needs_previous, read_followup, reads_as_question,
)
from bot.cli.main import EXIT_OK, main
from bot.types import Answer, Quote
from index.build import build_index
from index.errors import BadQuestion
from tests.conftest import SEED, make_settings, write_corpus

# A second article that answers "who praised…?" and "a formal commitment?" better when read alone.
CLUB = ("Club news.\n\nThe coach praised the young striker after the cup final. He did not get a formal commitment "
        "from the club, his agent said, so the striker may leave in summer.\n")
TURNS = ["How many troops would Pakistan send to Gaza?", "Who praised that?", "Did he get a formal commitment?"]


@pytest.fixture(scope="module")
def articles(tmp_path_factory):
    root = tmp_path_factory.mktemp("articles")
    corpus = write_corpus(root, {"club.txt": CLUB})
    shutil.copy(SEED, corpus / SEED.name)
    settings = make_settings(root)
    build_index(settings)
    return settings


@pytest.fixture(scope="module")
def answerer(articles):
    return Answerer(articles)


def _answer(question: str, *sources: str) -> Answer:
    quotes = tuple(Quote("text", source, 0, 4, 1, 2.0) for source in sources)
    return Answer(question, bool(quotes), quotes, 1.0)


def test_three_turns_without_the_subject_are_answered_from_the_first_turns_passage(answerer):
    first = answer_followup(answerer, TURNS[0], None)
    second = answer_followup(answerer, TURNS[1], first)
    third = answer_followup(answerer, TURNS[2], second)
    assert "3,500 troops" in first.answer.quotes[0].text and first.read_with is None
    passage = (first.answer.quotes[0].source, first.answer.quotes[0].line)
    for turn in (second, third):
        assert turn.answer.answered and (turn.answer.quotes[0].source, turn.answer.quotes[0].line) == passage
        assert turn.read_with == TURNS[0]  # the question that named the subject, even two turns back
    assert any("Rubio has praised" in quote.text for quote in second.answer.quotes)
    assert "formal commitment" in third.answer.quotes[0].text
    assert (second.answer.question, third.answer.question) == (TURNS[1], TURNS[2])  # as asked, not as searched
    assert set(third.carried) >= {"troops", "Pakistan", "Gaza", "praised"}
    # Read alone, the same two questions are refused or answered from the other article.
    for question in TURNS[1:]:
        alone = answer_followup(answerer, question, None).answer
        assert not alone.answered or alone.quotes[0].source == "club.txt"


def test_a_follow_up_that_stands_on_its_own_is_searched_as_asked():
    previous = Turn(TURNS[0], _answer(TURNS[0], "a.txt"))
    reading = read_followup("When did Pakistan and India fight a four-day war?", previous)
    assert reading.question_text == "When did Pakistan and India fight a four-day war?"
    assert (reading.prefer_sources, reading.read_with, reading.carried) == ((), None, ())
    assert read_followup("and when was that?", None).question_text == "and when was that?"


@pytest.mark.parametrize("question", ["and when was that?", "who said it?", "how many?", "What about Turkey?",
                                      "Why did they refuse it?"])
def test_short_follow_ups_carry_the_subject_and_prefer_the_cited_documents(question):
    previous = Turn(TURNS[0], _answer(TURNS[0], "gaza.txt", "other.txt", "gaza.txt"))
    reading = read_followup(question, previous)
    assert reading.question_text == f"{question} troops Pakistan send Gaza"
    assert reading.prefer_sources == ("gaza.txt", "other.txt") and reading.read_with == TURNS[0]


@pytest.mark.parametrize(("previous", "question"), [
    ("How do I claim travel expenses?", "Is there a gym discount?"),
    ("Where do I park my car?", "What is the wifi password?"),
    ("What is the refund policy?", "Is it possible to pay by bank transfer?"),
    ("How much annual leave do new staff get?", "How do employees report their sick days?"),
])
def test_a_question_with_its_own_subject_is_not_read_with_the_earlier_one(previous, question):
    reading = read_followup(question, Turn(previous, _answer(previous, "handbook.md")))
    assert reading == read_followup(question, None)  # as asked: no carried words, no preferred documents


def _share_read_right(name: str) -> tuple[float, list[dict]]:
    pairs = json.loads((Path(__file__).parent / "data" / name).read_text(encoding="utf-8"))["pairs"]
    wrong = [pair for pair in pairs if needs_previous(pair["question"]) != pair["needs_previous"]]
    return 1 - len(wrong) / len(pairs), wrong


def test_labelled_follow_ups_are_read_with_the_earlier_question_only_when_they_need_it():
    share, wrong = _share_read_right("followups.json")
    assert share >= 0.95, wrong


def test_held_out_follow_ups_are_read_right_too():
    # Written before the rule and kept out of its design: a check that it is not fitted to the set above.
    share, wrong = _share_read_right("followups_heldout.json")
    assert share >= 0.9, wrong


def test_a_refused_turn_still_gives_its_subject_but_no_documents_to_prefer():
    reading = read_followup("how many?", Turn(TURNS[0], _answer(TURNS[0])))
    assert reading.carried and reading.prefer_sources == ()


def test_words_already_in_the_follow_up_are_not_carried_again_and_length_stays_within_the_limit():
    previous = Turn(TURNS[0], _answer(TURNS[0], "a.txt"))
    assert read_followup("and the troop?", previous).carried == ("Pakistan", "send", "Gaza")
    long_question = "and " * 123 + "that?"
    assert read_followup(long_question, previous, max_chars=500).question_text == long_question


def test_content_words_skip_stopwords_fillers_and_repeated_stems():
    assert content_words("And what else happened to the troops, the troop and Pakistan's army?") == [
        "troops", "Pakistan's", "army"]


def test_the_users_own_words_must_make_a_question(answerer):
    previous = answer_followup(answerer, TURNS[0], None)
    with pytest.raises(BadQuestion, match="empty"):
        answer_followup(answerer, "   ", previous)


def test_messages_that_do_not_mention_the_bot_ask_only_when_they_read_as_questions():
    assert all(map(reads_as_question, ["and when was that", "Who said it", "ok, but how many?", "Is it true"]))
    assert not any(map(reads_as_question, ["thanks, that helped", "great answer", "so cool", "lol", ""]))


def test_conversations_are_bounded_forgetting_the_least_recent():
    conversations = Conversations(capacity=3)
    turns = [Turn(f"q{i}", _answer(f"q{i}")) for i in range(5)]
    conversations.remember(turns[0], 1, 2)  # a thread and the answer in it
    conversations.remember(turns[1], 3)
    assert conversations.get(1) is turns[0]  # used: now the most recent
    conversations.remember(turns[2], 4)
    assert 2 not in conversations and conversations.get(1) is turns[0] and len(conversations) == 3
    conversations.remember(turns[3], 1)
    assert conversations.get(1) is turns[3]


def test_chat_reads_follow_ups_with_the_previous_question_until_new(articles, capsys, monkeypatch):
    lines = iter([TURNS[0], TURNS[1], "/new", TURNS[1], ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": print("Q>") or next(lines))  # marks where turns start
    assert main(["--corpus", str(articles.corpus_dir), "--index", str(articles.index_dir), "chat"]) == EXIT_OK
    captured = capsys.readouterr()
    _, first, second, new, third, _ = captured.out.split("Q>\n")
    assert "3,500 troops" in first and "Read with" not in first and new == ""
    assert second.startswith(f"Read with your earlier question: {TURNS[0]}\n> ")
    assert second.split("\n  — ")[1].startswith(SEED.name)
    assert "Read with" not in third and "3,500 troops" not in third  # read alone again: not from the seed's passage
    assert "Starting over" in captured.err


@pytest.fixture
async def bot(tmp_path, articles):
    import discord.ext.test as dpytest

    from bot.discord.bot import VerbatimBot
    from tests.discord_fakes import offline

    settings = articles.model_copy(update={"feedback_db": tmp_path / "feedback.sqlite", "discord_cooldown_rate": 20})
    client = await offline(VerbatimBot(settings, Answerer(settings)))
    yield client
    await dpytest.empty_queue()
    client.feedback.close()


def _channel(bot, **options):
    from tests.discord_fakes import FakeChannel, FakeGuildWithMe, FakeUser

    return FakeChannel(FakeGuildWithMe(100, FakeUser(bot.user.id, "Verbatim", bot=True)), **options), FakeUser(42, "asker")


def _shown(message) -> tuple[str | None, str]:
    """The "read with" line and the first quote's citation of an answer in Discord."""
    embed = message.embed
    return embed.author.name, embed.fields[0].name


async def test_follow_ups_in_the_thread_the_bot_opened_are_read_with_the_earlier_question(bot):
    channel, asker = _channel(bot)
    question = channel.say(asker, f"<@{bot.user.id}> {TURNS[0]}")
    await bot.on_message(question)
    (thread,) = channel.threads
    assert thread.id == question.id and thread.name == TURNS[0]
    first = thread.messages[-1]
    assert first.embed.author.name is None and "3,500 troops" in first.embed.fields[0].value
    # In the thread, without a mention (the message-content intent is on) and then with one.
    await bot.on_message(thread.say(asker, TURNS[1]))
    await bot.on_message(thread.say(asker, f"<@{bot.user.id}> {TURNS[2]}"))
    second, third = thread.messages[-3], thread.messages[-1]
    for answer in (second, third):
        assert answer.reference is not None and answer.embed.title in TURNS[1:]
        assert _shown(answer) == (f"Read with your earlier question: {TURNS[0]}", _shown(first)[1])
    assert channel.threads == [thread] and len(channel.messages) == 1  # no new threads, nothing in the channel
    # Chatter in the thread is not a question; in a thread the bot did not open nothing is read.
    await bot.on_message(thread.say(asker, "thanks, that helped a lot"))
    assert thread.messages[-1].author == asker
    other, _ = _channel(bot, parent=channel, name="someone else's thread")
    await bot.on_message(other.say(asker, TURNS[1]))
    assert len(other.messages) == 1


async def test_a_reply_to_an_answer_follows_up_that_answer(bot):
    bot.settings = bot.settings.model_copy(update={"discord_mention_threads": False})
    channel, asker = _channel(bot)
    await bot.on_message(channel.say(asker, f"<@{bot.user.id}> {TURNS[0]}"))
    answer = channel.messages[-1]
    await bot.on_message(channel.say(asker, f"<@{bot.user.id}> {TURNS[1]}"))  # a mention, not a reply: read alone
    alone = channel.messages[-1]
    # Read alone: refused (no quote), or answered from the other article.
    assert alone.embed.author.name is None and all(f.name.startswith("club.txt") for f in alone.embed.fields[:1])
    await bot.on_message(channel.say(asker, f"<@{bot.user.id}> {TURNS[1]}", reply_to=answer))
    followed = channel.messages[-1]
    assert followed.reference.message_id == channel.messages[-2].id
    assert _shown(followed) == (f"Read with your earlier question: {TURNS[0]}", _shown(answer)[1])
    # Without the message-content intent a reply that does not ping the bot arrives empty: nothing to answer.
    await bot.on_message(channel.say(asker, "", reply_to=answer))
    assert channel.messages[-1].author == asker


async def test_the_bot_remembers_a_bounded_number_of_conversations(bot):
    bot.settings = bot.settings.model_copy(update={"discord_cooldown_rate": 20})
    bot.conversations = type(bot.conversations)(capacity=4)
    channel, asker = _channel(bot)
    for _ in range(3):
        await bot.on_message(channel.say(asker, f"<@{bot.user.id}> {TURNS[0]}"))
    first_thread, *_ = channel.threads
    assert len(bot.conversations) == 4 and first_thread.id not in bot.conversations  # thread and answer each
    await bot.on_message(first_thread.say(asker, TURNS[1]))
    assert len(first_thread.messages) == 2  # forgotten: no longer a conversation to follow up
    await bot.on_message(channel.threads[-1].say(asker, TURNS[1]))
    assert len(channel.threads[-1].messages) == 3  # remembered: answered


def test_the_earlier_question_heads_the_embed_within_discords_limits():
    from bot.discord.bot import followup_embed
    from bot.discord.render import answer_embed
    from tests.discord_fakes import check_embed

    embed = followup_embed(answer_embed(_answer("how many?", "a.txt"), 1.5), "why " * 125 + "\n?")
    assert embed.author.name.startswith("Read with your earlier question: why why") and "\n" not in embed.author.name
    assert len(embed.author.name) == 256 and embed.author.name.endswith("…")
    check_embed(embed)
    assert followup_embed(answer_embed(_answer("how many?", "a.txt"), 1.5), None).author.name is None
