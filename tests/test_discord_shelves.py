"""Two servers, three shelves, every command through the real CommandTree: nothing crosses shelves."""

import asyncio
import shutil
from dataclasses import replace

import discord.ext.test as dpytest
import pytest

from bot.discord.bot import NO_SHELF, NOT_HERE, PRIVATE_SHELF, AnswerView, VerbatimBot, allowed_guilds, role_ids
from index.build import build_index
from tests.conftest import make_settings
from tests.discord_fakes import CDN, FakeInteraction, Upload, dispatch, offline
from tests.documents import make_docx
from tests.pdfs import make_pdf

BEES = "Honey bees live in hives of about fifty thousand workers. The queen lays up to two thousand eggs a day.\n"
SHIPS = "The harbour crane lifts forty containers an hour. Ships from Rotterdam dock at pier nine every morning.\n"
STAFF = "The staff door code changes every ninety days. Payroll closes on the twentieth of each month.\n"
CORPORA = {"bees": ("bees.txt", BEES), "ships": ("ships.txt", SHIPS), "staff": ("staff.txt", STAFF)}
# What would betray each shelf if it showed up elsewhere: its file name and its words.
# (The questions below never contain them: a refusal repeats its question.)
MARKS = {"bees": ("bees.txt", "fifty thousand", "two thousand eggs"), "ships": ("ships.txt", "Rotterdam", "forty"),
         "staff": ("staff.txt", "ninety days", "Payroll")}
BEES_SERVER, SHIPS_SERVER, BARE_SERVER = 1, 2, 3
STAFF_CHANNEL, STAFF_ROLE, ADMIN_ID = 20, 7, 77
EGGS, CRANE, DOOR = ("How many eggs does the queen lay a day?", "How many containers does the crane lift an hour?",
                     "How often does the staff door code change?")


def shelves_config(root):
    return {
        "bees": {"corpus_dir": str(root / "bees"), "index_dir": str(root / "bees-index"), "guild_ids": [BEES_SERVER]},
        "ships": {"corpus_dir": str(root / "ships"), "index_dir": str(root / "ships-index"), "guild_ids": [SHIPS_SERVER]},
        "staff": {"corpus_dir": str(root / "staff"), "index_dir": str(root / "staff-index"), "guild_ids": [SHIPS_SERVER],
                  "channel_ids": [STAFF_CHANNEL], "role_ids": [STAFF_ROLE]},
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Three corpora and their indexes, built once; each test gets its own copy."""
    root = tmp_path_factory.mktemp("shelves")
    settings = make_settings(root, shelves=shelves_config(root))
    from bot.shelves.shelves import configured_shelves

    for name, (file, text) in CORPORA.items():
        (root / name).mkdir()
        (root / name / file).write_text(text)
    for shelf in configured_shelves(settings):
        build_index(shelf.settings)
    return root


@pytest.fixture
async def bot(tmp_path, built):
    for name in CORPORA:
        shutil.copytree(built / name, tmp_path / name)
        shutil.copytree(built / f"{name}-index", tmp_path / f"{name}-index")
    settings = make_settings(tmp_path, shelves=shelves_config(tmp_path), feedback_db=tmp_path / "feedback.sqlite",
                             discord_allowed_guild_ids=[BEES_SERVER, SHIPS_SERVER, BARE_SERVER],
                             discord_cooldown_rate=100)
    client = await offline(VerbatimBot(settings), guilds=2)
    client.add_view(AnswerView(client))
    yield client
    await dpytest.empty_queue()
    for shelf in client.shelves.values():
        shelf.feedback.close()


def run(bot, command, options=None, *, server, **kwargs):
    return dispatch(bot, FakeInteraction(bot, command, options or {}, guild_id=server, **kwargs))


def leaks(texts, *shelves):
    """Every mark of these shelves found in `texts`."""
    joined = "\n".join(texts)
    return [mark for shelf in shelves for mark in MARKS[shelf] if mark in joined]


def seen(interaction):
    return [message.text for message in interaction.shown]


async def test_each_server_is_answered_from_its_own_shelf_only(bot):
    bees = await run(bot, "ask", {"question": EGGS}, server=BEES_SERVER)
    assert "two thousand eggs" in bees.followup.sent[0].embed.fields[0].value
    assert not leaks(seen(bees), "ships", "staff")
    for question in (CRANE, DOOR):
        crossing = await run(bot, "ask", {"question": question}, server=BEES_SERVER)
        assert "don't answer" in crossing.followup.sent[0].embed.description
        assert not leaks(seen(crossing), "ships", "staff")
    ships = await run(bot, "ask", {"question": CRANE}, server=SHIPS_SERVER)
    assert "forty containers" in ships.followup.sent[0].embed.fields[0].value
    crossing = await run(bot, "ask", {"question": EGGS}, server=SHIPS_SERVER)
    assert not leaks(seen(crossing), "bees", "staff")


async def test_source_and_its_autocomplete_see_only_the_servers_shelf(bot):
    own = await run(bot, "source", {"document": "bees.txt"}, server=BEES_SERVER)
    assert own.response.sent[0].embed.title == "bees"
    other = await run(bot, "source", {"document": "ships.txt"}, server=BEES_SERVER)
    assert other.response.sent[0].ephemeral and "not in the index" in other.response.sent[0].content
    assert not leaks([other.response.sent[0].text.replace("`ships.txt`", "")], "ships")  # only the name typed
    for server, expected in ((BEES_SERVER, ["bees.txt"]), (SHIPS_SERVER, ["ships.txt"])):
        completion = await run(bot, "source", {"document": ""}, server=server, autocomplete_focus="document")
        assert [choice.value for choice in completion.choices] == expected
        completion = await run(bot, "ask", {"question": "x", "document": "s"}, server=server,
                               autocomplete_focus="document")
        assert [choice.value for choice in completion.choices] == expected


async def test_documents_count_and_list_only_the_servers_shelf(bot):
    for server, own, others in ((BEES_SERVER, "bees", ("ships", "staff")), (SHIPS_SERVER, "ships", ("bees", "staff"))):
        listing = await run(bot, "documents", server=server)
        embed = listing.response.sent[0].embed
        assert embed.title == "1 documents indexed" and f"`{own}.txt`" in embed.description
        assert not leaks(seen(listing), *others)


async def test_buttons_and_votes_reach_only_the_shelf_of_the_server_pressed_in(bot):
    reply = (await run(bot, "ask", {"question": CRANE}, server=SHIPS_SERVER)).followup.sent[0]
    view = reply.view
    message = type("Message", (), {"id": reply.id})()
    # The same message id pressed from the other server: that server's shelf has never seen it.
    press = FakeInteraction(bot, "ask", {"question": "x"}, guild_id=BEES_SERVER, user_id=5)
    press.message = message
    await view._scheduled_task(view.show_context, press)
    assert "no longer have the context" in press.all_sent[0].content and not leaks(seen(press), "ships")
    vote = FakeInteraction(bot, "ask", {"question": "x"}, guild_id=BEES_SERVER, user_id=5)
    vote.message = message
    await view._scheduled_task(view.thumbs_up, vote)
    assert "no longer have" in vote.all_sent[0].content
    assert not list(bot.shelves["bees"].feedback.export()) and not list(bot.shelves["ships"].feedback.export())
    # Pressed where it was answered, it works, and the vote lands in that shelf's feedback only.
    press = FakeInteraction(bot, "ask", {"question": "x"}, guild_id=SHIPS_SERVER, user_id=5)
    press.message = message
    await view._scheduled_task(view.show_context, press)
    assert "forty containers" in press.all_sent[0].content
    vote = FakeInteraction(bot, "ask", {"question": "x"}, guild_id=SHIPS_SERVER, user_id=5)
    vote.message = message
    await view._scheduled_task(view.thumbs_up, vote)
    assert [record["question"] for record in bot.shelves["ships"].feedback.export()] == [CRANE]
    assert bot.shelves["ships"].shelf.settings.feedback_db.name == "feedback-ships.sqlite"


async def test_reindex_rebuilds_only_the_servers_shelf(bot, tmp_path):
    (tmp_path / "ships" / "tugs.txt").write_text("Two tugboats guide every tanker past the breakwater at dawn.\n")
    elsewhere = await run(bot, "reindex", server=BEES_SERVER, user_id=ADMIN_ID, permissions=discord_admin())
    assert "up to date" in elsewhere.edits[-1]
    before = await run(bot, "ask", {"question": "How many tugboats guide a tanker?"}, server=SHIPS_SERVER)
    assert "don't answer" in before.followup.sent[0].embed.description
    # Asked while the rebuild runs (in its own process), the shelf answers from its old index.
    here, meanwhile = await asyncio.gather(
        run(bot, "reindex", server=SHIPS_SERVER, user_id=ADMIN_ID, permissions=discord_admin()),
        run(bot, "ask", {"question": CRANE}, server=SHIPS_SERVER))
    assert "1 added" in here.edits[-1]
    assert "forty containers" in meanwhile.followup.sent[0].embed.fields[0].value
    after = await run(bot, "ask", {"question": "How many tugboats guide a tanker?"}, server=SHIPS_SERVER)
    assert after.followup.sent[0].embed.fields[0].name.startswith("tugs.txt")
    bees = await run(bot, "ask", {"question": "How many tugboats guide a tanker?"}, server=BEES_SERVER)
    assert "tugs.txt" not in "\n".join(seen(bees))


async def test_an_index_rebuilt_elsewhere_is_followed_per_shelf(bot, tmp_path):
    (tmp_path / "bees" / "wasps.txt").write_text("Wasps build paper nests from chewed wood fibre.\n")
    build_index(bot.shelves["bees"].shelf.settings)  # as `verbatim index build --shelf bees` would
    await bot.follow_indexes()
    wasps = await run(bot, "ask", {"question": "What do wasps build their nests from?"}, server=BEES_SERVER)
    assert wasps.followup.sent[0].embed.fields[0].name.startswith("wasps.txt")
    ships = await run(bot, "ask", {"question": "What do wasps build their nests from?"}, server=SHIPS_SERVER)
    assert "wasps.txt" not in "\n".join(seen(ships))


async def test_a_channel_shelf_for_a_role_wins_there_and_answers_privately(bot):
    staff = await run(bot, "ask", {"question": DOOR}, server=SHIPS_SERVER, channel_id=STAFF_CHANNEL,
                      role_ids=(STAFF_ROLE,))
    assert staff.response.deferred["ephemeral"] and not staff.public
    assert "ninety days" in staff.private[0].embed.fields[0].value
    in_thread = await run(bot, "ask", {"question": DOOR}, server=SHIPS_SERVER, channel_id=21, thread_of=STAFF_CHANNEL,
                          role_ids=(STAFF_ROLE,))
    assert "ninety days" in in_thread.private[0].embed.fields[0].value
    # Without the role, or in another channel, the server's shelf answers, and knows nothing of it.
    for kwargs in ({"channel_id": STAFF_CHANNEL}, {"channel_id": 21, "role_ids": (STAFF_ROLE,)}):
        other = await run(bot, "ask", {"question": DOOR}, server=SHIPS_SERVER, **kwargs)
        assert other.public and not leaks(seen(other), "staff", "bees")
    listing = await run(bot, "documents", server=SHIPS_SERVER, channel_id=STAFF_CHANNEL, role_ids=(STAFF_ROLE,))
    assert listing.response.sent[0].ephemeral and "`staff.txt`" in listing.response.sent[0].embed.description


async def test_where_no_shelf_is_mapped_every_command_is_refused_privately(bot):
    assert allowed_guilds(bot.settings) == {BEES_SERVER, SHIPS_SERVER, BARE_SERVER}
    for command, options in (("ask", {"question": EGGS}), ("documents", {}), ("source", {"document": "bees.txt"}),
                             ("reindex", {})):
        refused = await run(bot, command, options, server=BARE_SERVER, permissions=discord_admin())
        assert refused.response.deferred is None and [m.content for m in refused.all_sent] == [NO_SHELF]
        assert refused.all_sent[0].ephemeral
    completion = await run(bot, "source", {"document": ""}, server=BARE_SERVER, autocomplete_focus="document")
    assert completion.choices == []
    elsewhere = await run(bot, "ask", {"question": EGGS}, server=4)
    assert [m.content for m in elsewhere.all_sent] == [NOT_HERE]
    dm = await run(bot, "ask", {"question": EGGS}, server=None)
    assert dm.all_sent[0].ephemeral and not leaks(seen(dm), "bees", "ships", "staff")


async def test_scoped_ask_refuses_a_document_of_another_shelf_before_deferring(bot):
    crossing = await run(bot, "ask", {"question": CRANE, "document": "ships.txt"}, server=BEES_SERVER)
    assert crossing.response.deferred is None and crossing.all_sent[0].ephemeral
    assert "'ships.txt' is not among the documents here" in crossing.all_sent[0].content
    assert not leaks([crossing.all_sent[0].content.replace("'ships.txt'", "")], "ships")




async def test_scoped_ask_answers_from_that_document_only(bot, tmp_path):
    (tmp_path / "bees" / "wasps.txt").write_text("Wasp queens lay their eggs in paper cells in spring.\n")
    await run(bot, "reindex", server=BEES_SERVER, user_id=ADMIN_ID, permissions=discord_admin())
    scoped = await run(bot, "ask", {"question": "Where do wasp queens lay eggs?", "document": "bees.txt"},
                       server=BEES_SERVER)
    names = [field.name for field in scoped.followup.sent[0].embed.fields]
    assert names and all(name.startswith("bees.txt") for name in names)


async def test_mentions_are_answered_from_the_servers_shelf(bot):
    first, second = bot.guilds
    bot.settings = bot.settings.model_copy(update={"discord_allowed_guild_ids": [first.id, second.id],
                                                   "discord_mention_threads": False})
    for name, guild in (("bees", first), ("ships", second)):
        bot.shelves[name].shelf = replace(bot.shelves[name].shelf, guild_ids=frozenset({guild.id}))
    await dpytest.message(f"<@{bot.user.id}> {CRANE}", channel=0, member=0)
    crossing = dpytest.get_message()
    assert not leaks([crossing.embeds[0].description or ""], "ships")
    await dpytest.message(f"<@{bot.user.id}> {CRANE}", channel=2, member=1)  # the second server's text channel
    assert "forty containers" in dpytest.get_message().embeds[0].fields[0].value
    bot.shelves["ships"].shelf = replace(bot.shelves["ships"].shelf, role_ids=frozenset({STAFF_ROLE}))
    await dpytest.message(f"<@{bot.user.id}> {CRANE}", channel=2, member=1)
    assert dpytest.get_message().content == NO_SHELF
    # A shelf for some roles never answers in the open channel, even to a member who has the role.
    staff = dpytest.backend.make_role("staff", first)
    await dpytest.add_role(0, staff)
    assert staff.id in role_ids(dpytest.get_config().members[0])
    bot.shelves["bees"].shelf = replace(bot.shelves["bees"].shelf, role_ids=frozenset({staff.id}))
    await dpytest.message(f"<@{bot.user.id}> {EGGS}", channel=0, member=0)
    assert dpytest.get_message().content == PRIVATE_SHELF


def discord_admin():
    import discord

    return discord.Permissions(manage_guild=True)


def zip_bomb_docx() -> bytes:
    """A .docx whose document part unpacks to 20 MB of zeros from about 20 KB."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * 20_000_000)
    return buffer.getvalue()


LEAVE_PDF = make_pdf([["Leave policy", "Every employee gets twenty-seven days of paid leave a year."]])
TRAVEL_DOCX = make_docx([(1, "Travel"), (0, "Night trains are booked through the travel desk on the third floor.")])


async def test_added_pdf_and_docx_are_answered_right_after_the_same_interaction(bot, tmp_path, monkeypatch):
    monkeypatch.setattr("bot.discord.bot.REBUILD_POLL_SECONDS", 0.05)  # show progress while the child process starts
    added = await run(bot, "add", {"file": Upload("leave.pdf", LEAVE_PDF), "file2": Upload("travel.docx", TRAVEL_DOCX)},
                      server=BEES_SERVER, user_id=ADMIN_ID, permissions=discord_admin())
    report = added.original.content
    assert report.startswith("Added `uploads/leave.pdf`.\nAdded `uploads/travel.docx`.\n") and "2 added" in report
    assert added.public == [added.original] and not added.placeholder_open
    progress = [edit for edit in added.edits if "Reindexing…" in edit]
    assert progress and progress[0].startswith("Added `uploads/leave.pdf`.\nAdded `uploads/travel.docx`.\nReindexing…")
    leave = await run(bot, "ask", {"question": "How many days of paid leave does an employee get?"}, server=BEES_SERVER)
    assert leave.followup.sent[0].embed.fields[0].name.startswith("uploads/leave.pdf, page 1")
    travel = await run(bot, "ask", {"question": "Who books the night trains?"}, server=BEES_SERVER)
    assert travel.followup.sent[0].embed.fields[0].name.startswith("uploads/travel.docx")
    listing = await run(bot, "documents", server=BEES_SERVER)
    changes = listing.response.sent[0].embed.fields[0]
    assert changes.name == "Recently added and removed" and f"user{ADMIN_ID} added `uploads/travel.docx`" in changes.value
    # The other server's shelf got none of it.
    elsewhere = await run(bot, "ask", {"question": "How many days of paid leave does an employee get?"},
                          server=SHIPS_SERVER)
    assert "uploads/" not in "\n".join(seen(elsewhere))
    other_listing = await run(bot, "documents", server=SHIPS_SERVER)
    assert not other_listing.response.sent[0].embed.fields and "uploads/" not in other_listing.response.sent[0].text


async def test_oversized_disguised_bombs_and_path_tricks_are_refused_with_reasons(bot, tmp_path):
    before = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*") if path.is_file())
    huge = Upload("atlas.pdf", LEAVE_PDF, size=30_000_000)
    refused = await run(bot, "add", {"file": huge, "file2": Upload("setup.pdf", b"MZ\x90\x00" + b"\x00" * 200),
                                     "file3": Upload("../../ships/evil.txt", b"Ships are evil.\n")},
                        server=BEES_SERVER, user_id=ADMIN_ID, permissions=discord_admin())
    lines = refused.original.content.split("\n")
    assert lines[0] == "`atlas.pdf`: not added: 'atlas.pdf' is 30.0 MB; files of at most 20 MB can be added"
    assert lines[1].startswith("`setup.pdf`: not added:") and "a Windows program" in lines[1]
    assert lines[2].startswith("`../../ships/evil.txt`: not added:") and "path" in lines[2]
    assert not any(url.endswith("/atlas.pdf") for url in CDN.fetched)  # never downloaded
    bomb = await run(bot, "add", {"file": Upload("report.docx", zip_bomb_docx())}, server=BEES_SERVER,
                     user_id=ADMIN_ID, permissions=discord_admin())
    assert "not added" in bomb.original.content and "zip bomb" in bomb.original.content
    bot.settings = bot.settings.model_copy(update={"upload_max_files": 2})
    three = await run(bot, "add", {"file": Upload("a.txt", b"A.\n"), "file2": Upload("b.txt", b"B.\n"),
                                   "file3": Upload("c.txt", b"C.\n")}, server=BEES_SERVER, user_id=ADMIN_ID,
                      permissions=discord_admin())
    assert three.response.deferred is None and three.all_sent[0].ephemeral
    assert three.all_sent[0].content == "3 files at once; add at most 2 a time"
    assert sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*") if path.is_file()) == before


async def test_only_admins_and_the_shelfs_uploader_roles_may_add_and_remove(bot, tmp_path):
    member = await run(bot, "add", {"file": Upload("leave.pdf", LEAVE_PDF)}, server=BEES_SERVER, user_id=5)
    assert member.response.deferred is None and member.all_sent[0].ephemeral
    assert "can add or remove documents" in member.all_sent[0].content
    assert not (tmp_path / "bees" / "uploads").exists()
    removal = await run(bot, "remove", {"document": "bees.txt"}, server=BEES_SERVER, user_id=5)
    assert "can add or remove documents" in removal.all_sent[0].content and (tmp_path / "bees" / "bees.txt").exists()
    bot.shelves["bees"].shelf = replace(bot.shelves["bees"].shelf, uploader_role_ids=frozenset({8}))
    uploader = await run(bot, "add", {"file": Upload("leave.pdf", LEAVE_PDF)}, server=BEES_SERVER, user_id=5,
                         role_ids=(8,))
    assert "1 added" in uploader.original.content
    # The role is the bees shelf's: in the other server it grants nothing.
    elsewhere = await run(bot, "add", {"file": Upload("leave.pdf", LEAVE_PDF)}, server=SHIPS_SERVER, user_id=5,
                          role_ids=(8,))
    assert "can add or remove documents" in elsewhere.all_sent[0].content


async def test_remove_deletes_from_the_shelf_only_and_is_recorded(bot, tmp_path):
    crossing = await run(bot, "remove", {"document": "../ships/ships.txt"}, server=BEES_SERVER, user_id=ADMIN_ID,
                         permissions=discord_admin())
    assert crossing.all_sent[0].ephemeral and "not a document name in this shelf" in crossing.all_sent[0].content
    assert (tmp_path / "ships" / "ships.txt").exists()
    completion = await run(bot, "remove", {"document": ""}, server=BEES_SERVER, autocomplete_focus="document")
    assert [choice.value for choice in completion.choices] == ["bees.txt"]
    (tmp_path / "bees" / "more.txt").write_text("Drones do not sting and live only a few weeks.\n")
    await run(bot, "reindex", server=BEES_SERVER, user_id=ADMIN_ID, permissions=discord_admin())
    removed = await run(bot, "remove", {"document": "more.txt"}, server=BEES_SERVER, user_id=ADMIN_ID,
                        permissions=discord_admin())
    assert removed.original.content.startswith("Removed `more.txt`.\n") and "1 removed" in removed.original.content
    assert not (tmp_path / "bees" / "more.txt").exists()
    drones = await run(bot, "ask", {"question": "Do drones sting?"}, server=BEES_SERVER)
    assert "more.txt" not in "\n".join(seen(drones))
    (entry,) = bot.shelves["bees"].ledger.entries(5)
    assert (entry.action, entry.source, entry.actor_id) == ("remove", "more.txt", ADMIN_ID) and len(entry.sha256) == 64


def admin_run(bot, command, options, server=BEES_SERVER):
    return run(bot, command, options, server=server, user_id=ADMIN_ID, permissions=discord_admin())


async def test_removing_a_shelfs_last_document_leaves_the_shelf_empty(bot, tmp_path):
    removed = await admin_run(bot, "remove", {"document": "bees.txt"})
    report = removed.original.content
    assert report.startswith("Removed `bees.txt`.\nIndexed 0 documents") and "1 removed" in report
    assert not removed.private and not (tmp_path / "bees" / "bees.txt").exists()
    assert not list((tmp_path / "bees-index" / "removed").iterdir())  # deleted for good once the index is published
    eggs = await run(bot, "ask", {"question": EGGS}, server=BEES_SERVER)
    assert "don't answer" in eggs.followup.sent[0].embed.description and not leaks(seen(eggs), "bees")
    listing = await run(bot, "documents", server=BEES_SERVER)
    assert listing.response.sent[0].embed.title == "0 documents indexed"
    completion = await run(bot, "remove", {"document": ""}, server=BEES_SERVER, autocomplete_focus="document")
    assert completion.choices == []
    (entry,) = bot.shelves["bees"].ledger.entries(5)
    assert (entry.action, entry.source) == ("remove", "bees.txt") and len(entry.sha256) == 64


async def test_remove_refuses_hidden_and_unindexed_files_and_leaves_them(bot, tmp_path):
    for name in (".git/config", "private/keys.pem", ".env"):
        path = tmp_path / "bees" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text("secret = 1\n")
        refused = await admin_run(bot, "remove", {"document": name})
        assert refused.response.deferred is None and len(refused.all_sent) == 1 and refused.all_sent[0].ephemeral
        assert refused.all_sent[0].content == f"{name!r} is not among the documents here; pick one from the list"
        assert path.read_text() == "secret = 1\n"
    assert not bot.shelves["bees"].ledger.entries(5)


async def test_a_failed_rebuild_puts_the_removed_document_back_and_says_so(bot, tmp_path):
    import fcntl

    with (tmp_path / "bees-index" / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a CLI build holds the shelf's index meanwhile
        kept = await admin_run(bot, "remove", {"document": "bees.txt"})
    assert kept.original.content == ("Not removed: `bees.txt` was put back, because the rebuild without it failed: "
                                     "another build is running on …; wait for it to finish")
    assert (tmp_path / "bees" / "bees.txt").read_text() == BEES
    assert not list((tmp_path / "bees-index" / "removed").iterdir())
    eggs = await run(bot, "ask", {"question": EGGS}, server=BEES_SERVER)
    assert "two thousand eggs" in eggs.followup.sent[0].embed.fields[0].value
    assert not bot.shelves["bees"].ledger.entries(5)


async def test_source_on_a_private_shelf_is_shown_only_to_the_asker(bot):
    staff = await run(bot, "source", {"document": "staff.txt"}, server=SHIPS_SERVER, channel_id=STAFF_CHANNEL,
                      role_ids=(STAFF_ROLE,))
    assert staff.response.sent[0].embed.title == "staff" and staff.response.sent[0].ephemeral and not staff.public


async def test_add_on_a_full_disk_answers_in_one_line_and_adds_nothing(bot, tmp_path, monkeypatch):
    import errno
    import os

    def full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    added = await admin_run(bot, "add", {"file": Upload("leave.pdf", LEAVE_PDF)})
    assert added.original.content == ("`leave.pdf`: not added: the disk is full at uploads/ in the shelf's documents "
                                      "folder; nothing was added (free some space there)")
    assert not [path for path in (tmp_path / "bees" / "uploads").iterdir()]
