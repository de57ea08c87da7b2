import shutil

import discord
import discord.ext.test as dpytest
import pytest

from bot.answering.answer import Answerer
from bot.discord.bot import PUBLIC_FAILURE, AnswerView, MentionLimiter, VerbatimBot, allowed_guilds
from bot.discord.render import EMBED_TOTAL_MAX, FIELD_VALUE_MAX
from index.errors import VerbatimError
from tests.conftest import built_corpus, copy_built, make_settings, write_corpus
from tests.discord_fakes import FakeInteraction, check_payload, dispatch, offline

HIVE = ("Honey bees live in hives of about fifty thousand workers. The queen lays up to two thousand eggs a day.\n\n"
        "Beekeepers say **@everyone** should wear a veil near the hive. Smoke calms the bees before the hive is opened.\n")
ADMIN = discord.Permissions(manage_guild=True)


@pytest.fixture(scope="module")
def hive(tmp_path_factory):
    """The bees corpus and its index, built once; each test gets its own copy."""
    return built_corpus(tmp_path_factory.mktemp("hive"), {"bees.txt": HIVE})


@pytest.fixture
async def bot(tmp_path, hive):
    copy_built(hive, tmp_path)
    settings = make_settings(tmp_path, feedback_db=tmp_path / "feedback.sqlite", discord_cooldown_rate=3,
                             discord_owner_ids=[7])
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
    # After the public "thinking…", the channel sees one generic line; the rest is private.
    assert [m.text for m in interaction.public] == [PUBLIC_FAILURE]
    assert [m.content for m in interaction.private] == ["Something went wrong on my side; it has been logged."]
    assert not interaction.placeholder_open
    assert "disk on fire" in caplog.text


async def test_errors_after_the_public_defer_never_show_server_paths(bot, monkeypatch):
    index = bot.settings.index_dir.resolve()

    def damaged(question, top=None, **scope):
        raise VerbatimError(f"the index in {index} is damaged (see /var/log/verbatim/build.log): rebuild it")

    monkeypatch.setattr(bot.answerer, "answer", damaged)
    interaction = await ask(bot, "How many eggs does the queen lay?")
    assert [m.text for m in interaction.public] == [PUBLIC_FAILURE]
    (details,) = interaction.private
    assert details.content == "the index in … is damaged (see …): rebuild it"


async def test_a_failed_reindex_leaves_a_generic_public_line(bot, tmp_path):
    shutil.rmtree(tmp_path / "corpus")  # an unmounted corpus: the build (in its own process) refuses
    interaction = await dispatch(bot, FakeInteraction(bot, "reindex", {}, user_id=7))
    assert [m.text for m in interaction.public] == [PUBLIC_FAILURE]
    (details,) = [m.content for m in interaction.private]
    assert details.startswith("corpus directory not found: …") and str(tmp_path) not in details


async def test_source_documents_and_autocomplete(bot):
    info = await dispatch(bot, FakeInteraction(bot, "source", {"document": "bees.txt"}))
    embed = info.response.sent[0].embed
    assert embed.title == "bees" and any(f.name == "Passages" for f in embed.fields)  # its first line is a paragraph
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
    await view._scheduled_task(view.show_context, press)  # checks first, as discord.py runs a press
    assert "two thousand eggs" in press.response.sent[0].content and press.response.sent[0].ephemeral
    stale = bot.feedback.quotes(reply.id)[0]
    moved = type(stale)(stale.text, stale.source, stale.start + 1, stale.end + 1, stale.line, stale.score)
    assert "changed since" in bot.contexts(bot.answerer, [moved])[0]
    vote = FakeInteraction(bot, "ask", {"question": "x"}, user_id=123456789012345678)
    vote.message = press.message
    await view._scheduled_task(view.thumbs_up, vote)
    (record,) = list(bot.feedback.export())
    assert record["vote"] == 1 and record["question"] == "How many eggs does the queen lay a day?"
    assert "123456789012345678" not in str(record)


async def test_a_mention_is_answered_in_the_channel(bot):
    bot.settings = bot.settings.model_copy(update={"discord_mention_threads": False})  # dpytest has no threads
    await dpytest.message(f"<@{bot.user.id}> How many eggs does the queen lay a day?")
    reply = dpytest.get_message()
    assert "two thousand eggs a day" in reply.embeds[0].fields[0].value
    await dpytest.message("no mention here")
    assert dpytest.verify().message().nothing()


async def test_the_reindex_report_lists_skipped_files_whole_within_one_message(bot, tmp_path):
    write_corpus(tmp_path, {f"skip_{i:03}_{'x' * 60}.txt": b"\x00\x01binary" for i in range(60)})
    interaction = await dispatch(bot, FakeInteraction(bot, "reindex", {}, user_id=7))
    report = interaction.edits[-1]
    check_payload(report, [])
    assert "Skipped 60:" in report and report.endswith("more.") and report.count("`") % 2 == 0
    assert "`skip_000_" in report and "\\_" not in report  # code spans show names as they are


async def test_documents_show_sources_in_closed_unescaped_code_spans(bot, tmp_path):
    title = "A title with *stars* and" + " long words" * 8  # a title: at most 120 characters, no full stop
    write_corpus(tmp_path, {f"dir_{'d' * 150}/the_long_name.txt": title + "\n\nSome text about the queen bee."})
    await dispatch(bot, FakeInteraction(bot, "reindex", {}, user_id=7))
    listing = await dispatch(bot, FakeInteraction(bot, "documents", {}))
    lines = listing.response.sent[0].embed.description.split("\n")
    assert "`bees.txt` — bees" in lines[0]
    assert lines[1].startswith("`dir_ddd") and lines[1].count("`") == 2 and "\\_" not in lines[1].split("—")[0]
    assert "\\*stars\\*" in lines[1] and lines[1].endswith("…")


def test_allowed_servers_are_the_allow_list_else_the_sync_servers_else_all(tmp_path):
    assert allowed_guilds(make_settings(tmp_path)) is None
    assert allowed_guilds(make_settings(tmp_path, discord_guild_ids=[1, 2])) == {1, 2}
    assert allowed_guilds(make_settings(tmp_path, discord_guild_ids=[1], discord_allowed_guild_ids=[3])) == {3}


async def test_commands_answer_only_in_allowed_servers_and_dms_only_when_enabled(bot):
    bot.settings = bot.settings.model_copy(update={"discord_allowed_guild_ids": [555]})
    elsewhere = await ask(bot, "How many eggs does the queen lay a day?")
    assert elsewhere.response.deferred is None and [m.ephemeral for m in elsewhere.all_sent] == [True]
    admin = await dispatch(bot, FakeInteraction(bot, "reindex", {}, permissions=ADMIN))
    assert admin.response.deferred is None and "only answer" in admin.all_sent[0].content
    completion = await dispatch(bot, FakeInteraction(bot, "source", {"document": "bee"}, autocomplete_focus="document"))
    assert completion.choices == []
    dm = await ask(bot, "How many eggs does the queen lay a day?", guild_id=None)
    assert not dm.followup.sent and dm.all_sent[0].ephemeral
    bot.settings = bot.settings.model_copy(update={"discord_allow_dms": True})
    dm = await ask(bot, "How many eggs does the queen lay a day?", guild_id=None)
    assert "two thousand eggs" in dm.followup.sent[0].embed.fields[0].value
    # In a DM there is no server to manage: only owners may reindex there.
    dm_admin = await dispatch(bot, FakeInteraction(bot, "reindex", {}, guild_id=None, permissions=ADMIN, user_id=9))
    assert "Manage Server" in dm_admin.all_sent[-1].content


async def test_buttons_work_only_in_allowed_servers(bot):
    reply = (await ask(bot, "How many eggs does the queen lay a day?")).followup.sent[0]
    bot.settings = bot.settings.model_copy(update={"discord_allowed_guild_ids": [555]})
    press = FakeInteraction(bot, "ask", {"question": "x"}, user_id=77)
    press.message = type("Message", (), {"id": reply.id})()
    assert not await reply.view.interaction_check(press)
    assert press.response.sent[0].ephemeral and "only answer" in press.response.sent[0].content


class FakeGuild:
    """A server the bot is in; leaving is its only Discord call here."""

    def __init__(self, guild_id: int) -> None:
        self.id, self.name, self.left = guild_id, f"server {guild_id}", False

    async def leave(self) -> None:
        self.left = True


async def test_the_bot_leaves_servers_that_are_not_allowed(bot, monkeypatch):
    bot.settings = bot.settings.model_copy(update={"discord_allowed_guild_ids": [555]})
    listed, unlisted, joined = FakeGuild(555), FakeGuild(666), FakeGuild(777)
    monkeypatch.setattr(type(bot), "guilds", property(lambda self: [listed, unlisted]))
    await bot.on_ready()
    await bot.on_guild_join(joined)
    assert (listed.left, unlisted.left, joined.left) == (False, True, True)
    bot.settings = bot.settings.model_copy(update={"discord_allowed_guild_ids": []})
    stays = FakeGuild(888)
    await bot.on_guild_join(stays)  # no allow-list at all: every server is served
    assert not stays.left


async def test_mentions_in_servers_that_are_not_allowed_are_ignored(bot):
    bot.settings = bot.settings.model_copy(update={"discord_allowed_guild_ids": [555], "discord_mention_threads": False})
    await dpytest.message(f"<@{bot.user.id}> How many eggs does the queen lay a day?")
    assert dpytest.verify().message().nothing()


async def test_the_mention_cooldown_comes_before_checking_the_question(bot):
    for _ in range(6):
        await dpytest.message(f"<@{bot.user.id}>")  # empty: each one used to get a reply
    replies = [dpytest.get_message().content for _ in range(4)]
    assert ["Ask me like this" in r for r in replies] == [True, True, True, False] and "Slow down" in replies[3]
    assert dpytest.verify().message().nothing()  # told once to slow down, then quiet


async def test_a_reply_that_pings_the_bot_is_not_a_question(bot, monkeypatch):
    import discord.ext.test.backend as backend

    found = backend.find_user_mentions
    # A reply with its ping on lists the bot in `mentions`, though the text never names it.
    monkeypatch.setattr(backend, "find_user_mentions",
                        lambda content, guild: found(content, guild) + [guild.get_member(bot.user.id)])
    await dpytest.message("thanks, that helped a lot")
    assert dpytest.verify().message().nothing()


def test_mention_cooldowns_forget_users_whose_window_has_passed():
    limiter = MentionLimiter(rate=1, per=30)
    for user in range(1000):
        assert limiter.retry_after(user, now=1000.0) == 0
    assert limiter.retry_after(1, now=1001.0) > 0
    assert limiter.retry_after(5000, now=1040.0) == 0
    assert len(limiter) == 1


async def test_a_button_that_fails_answers_privately_without_paths(bot):
    reply = (await ask(bot, "How many eggs does the queen lay a day?")).followup.sent[0]
    (bot.settings.feedback_db.parent / "feedback.sqlite.key").write_text("damaged\n")
    vote = FakeInteraction(bot, "ask", {"question": "x"}, user_id=77)
    vote.message = type("Message", (), {"id": reply.id})()
    await reply.view._scheduled_task(reply.view.thumbs_up, vote)  # as discord.py runs a press
    (told,) = vote.all_sent
    assert told.ephemeral and "does not hold a feedback secret" in told.content
    assert str(bot.settings.feedback_db.parent) not in told.content


async def test_a_mention_that_fails_gets_a_short_reply_without_paths(bot, monkeypatch):
    index = bot.settings.index_dir.resolve()

    def damaged(question, top=None, **scope):
        raise VerbatimError(f"the index in {index} is damaged: rebuild it")

    monkeypatch.setattr(bot.answerer, "answer", damaged)
    bot.settings = bot.settings.model_copy(update={"discord_mention_threads": False})
    await dpytest.message(f"<@{bot.user.id}> How many eggs does the queen lay a day?")
    assert dpytest.get_message().content == "the index in … is damaged: rebuild it"
