import discord
import discord.ext.test as dpytest
import pytest

from bot.answer import Answerer
from bot.discord_bot import AnswerView, VerbatimBot
from bot.discord_render import EMBED_TOTAL_MAX, FIELD_VALUE_MAX
from index.build import build_index
from tests.conftest import make_settings, write_corpus
from tests.discord_fakes import FakeInteraction, dispatch, offline

HIVE = ("Honey bees live in hives of about fifty thousand workers. The queen lays up to two thousand eggs a day.\n\n"
        "Beekeepers say **@everyone** should wear a veil near the hive. Smoke calms the bees before the hive is opened.\n")
ADMIN = discord.Permissions(manage_guild=True)


@pytest.fixture
async def bot(tmp_path):
    write_corpus(tmp_path, {"bees.txt": HIVE})
    settings = make_settings(tmp_path, feedback_db=tmp_path / "feedback.sqlite", discord_cooldown_rate=3,
                             discord_owner_ids=[7])
    build_index(settings)
    client = await offline(VerbatimBot(settings, Answerer(settings)))
    client.add_view(AnswerView(client))
    yield client
    await dpytest.empty_queue()
    client.feedback.close()


async def ask(bot, question, **kwargs):
    return await dispatch(bot, FakeInteraction(bot, "ask", {"question": question}, **kwargs))


async def test_ask_defers_then_answers_with_verbatim_quotes_within_limits(bot):
    interaction = await ask(bot, "How many eggs does the queen lay a day?")
    assert interaction.response.deferred == {"ephemeral": False, "thinking": True}
    (reply,) = interaction.followup.sent
    embed = reply.embed
    assert "two thousand eggs a day" in embed.fields[0].value and embed.fields[0].value.startswith("> ")
    assert embed.fields[0].name.startswith("bees.txt:")
    assert len(embed) <= EMBED_TOTAL_MAX and all(len(f.value) <= FIELD_VALUE_MAX for f in embed.fields)
    assert isinstance(reply.view, AnswerView)
    assert bot.feedback.quotes(reply.id)[0].source == "bees.txt"


async def test_refusal_is_plain_and_has_no_buttons(bot):
    interaction = await ask(bot, "Who won the football World Cup in 2022?")
    (reply,) = interaction.followup.sent
    assert "don't answer" in reply.embed.description and reply.view is None


async def test_quoted_text_is_escaped_and_can_never_ping(bot):
    fresh = VerbatimBot(bot.settings, bot.answerer).allowed_mentions
    assert (fresh.everyone, fresh.users, fresh.roles, fresh.replied_user) == (False, False, False, False)
    interaction = await ask(bot, "Who should wear a veil near the hive?")
    value = interaction.followup.sent[0].embed.fields[0].value
    assert "@\u200beveryone" in value and "@everyone" not in value
    assert "\\*\\*" in value


async def test_overlong_and_empty_questions_get_a_private_hint_without_deferring(bot):
    interaction = await ask(bot, "why " * 200)
    assert interaction.response.deferred is None
    (reply,) = interaction.response.sent
    assert reply.ephemeral and "keep it under 500" in reply.content


async def test_cooldown_is_per_user_and_answered_privately(bot):
    for _ in range(3):
        await ask(bot, "How many workers live in a hive?", user_id=5)
    limited = await ask(bot, "How many workers live in a hive?", user_id=5)
    assert limited.all_sent[-1].ephemeral and "Slow down" in limited.all_sent[-1].content
    other = await ask(bot, "How many workers live in a hive?", user_id=6)
    assert other.followup.sent[0].embed.fields


async def test_reindex_is_for_admins_and_owners_and_switches_the_running_bot(bot, tmp_path):
    denied = await dispatch(bot, FakeInteraction(bot, "reindex", {}, user_id=9))
    assert "Manage Server" in denied.all_sent[-1].content and denied.all_sent[-1].ephemeral
    write_corpus(tmp_path, {"wasps.txt": "Wasps build paper nests from chewed wood fibre."})
    allowed = await dispatch(bot, FakeInteraction(bot, "reindex", {}, user_id=9, permissions=ADMIN))
    assert "1 added" in allowed.edits[-1]
    answer = await ask(bot, "What do wasps build their nests from?", user_id=11)
    assert answer.followup.sent[0].embed.fields[0].name.startswith("wasps.txt")
    owner = await dispatch(bot, FakeInteraction(bot, "reindex", {}, user_id=7))
    assert "already up to date" in owner.edits[-1]


async def test_unexpected_errors_are_logged_and_answered_kindly(bot, caplog, monkeypatch):
    def broken(question, top=None):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(bot.answerer, "answer", broken)
    interaction = await ask(bot, "How many eggs does the queen lay?")
    assert interaction.all_sent[-1].ephemeral and "went wrong" in interaction.all_sent[-1].content
    assert "disk on fire" in caplog.text


async def test_source_documents_and_autocomplete(bot):
    info = await dispatch(bot, FakeInteraction(bot, "source", {"document": "bees.txt"}))
    embed = info.response.sent[0].embed
    assert embed.title.startswith("Honey bees") and any(f.name == "Passages" for f in embed.fields)
    missing = await dispatch(bot, FakeInteraction(bot, "source", {"document": "nope.txt"}))
    assert missing.response.sent[0].ephemeral
    listing = await dispatch(bot, FakeInteraction(bot, "documents", {}))
    assert "`bees.txt`" in listing.response.sent[0].embed.description
    completion = await dispatch(bot, FakeInteraction(bot, "source", {"document": "bee"}, autocomplete_focus="document"))
    assert [choice.value for choice in completion.choices] == ["bees.txt"]


async def test_buttons_show_context_and_record_feedback(bot):
    interaction = await ask(bot, "How many eggs does the queen lay a day?")
    reply = interaction.followup.sent[0]
    view = reply.view
    press = FakeInteraction(bot, "ask", {"question": "x"}, user_id=77)
    press.message = type("Message", (), {"id": reply.id})()
    await view.show_context.callback(press)
    assert "two thousand eggs" in press.response.sent[0].content and press.response.sent[0].ephemeral
    stale = bot.feedback.quotes(reply.id)[0]
    moved = type(stale)(stale.text, stale.source, stale.start + 1, stale.end + 1, stale.line, stale.score)
    assert "changed since" in bot.contexts([moved])[0]
    vote = FakeInteraction(bot, "ask", {"question": "x"}, user_id=77)
    vote.message = press.message
    await view.thumbs_up.callback(vote)
    (record,) = list(bot.feedback.export())
    assert record["vote"] == 1 and record["question"] == "How many eggs does the queen lay a day?"
    assert "77" not in record["user_hash"]


async def test_a_mention_is_answered_in_the_channel(bot):
    bot.settings = bot.settings.model_copy(update={"discord_mention_threads": False})  # dpytest has no threads
    await dpytest.message(f"<@{bot.user.id}> How many eggs does the queen lay a day?")
    reply = dpytest.get_message()
    assert "two thousand eggs a day" in reply.embeds[0].fields[0].value
    await dpytest.message("no mention here")
    assert dpytest.verify().message().nothing()
