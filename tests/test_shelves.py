import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.cli.main import EXIT_ERROR, EXIT_NOT_ANSWERED, EXIT_OK, main
from bot.shelves.shelves import DEFAULT, Shelf, UnknownShelf, configured_shelves, shelf_for, shelf_named
from config import load_settings
from config.settings import InvalidSetting, default_index_dir
from tests.conftest import SHARED_CACHE

BEES = "Honey bees live in hives of about fifty thousand workers. The queen lays up to two thousand eggs a day.\n"
SHIPS = "The harbour crane lifts forty containers an hour. Ships from Rotterdam dock at pier nine.\n"

TWO_SHELVES = f"""
cache_dir = "{SHARED_CACHE}"

[shelves.bees]
corpus_dir = "bees"
guild_ids = [1]
uploader_role_ids = [9]

[shelves.ships]
corpus_dir = "ships"
index_dir = "var/ships-index"
guild_ids = [2]
channel_ids = [20]
role_ids = [7]
"""


@pytest.fixture
def two_shelves(tmp_path):
    """verbatim.toml with two shelves in the working directory, their corpora beside it."""
    for name, text in (("bees", BEES), ("ships", SHIPS)):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.txt").write_text(text)
    (tmp_path / "verbatim.toml").write_text(TWO_SHELVES)
    return tmp_path


def test_no_shelves_means_one_default_shelf_of_corpus_and_index(tmp_path):
    settings = load_settings(corpus_dir=tmp_path / "docs")
    (shelf,) = configured_shelves(settings)
    assert shelf.name == DEFAULT and shelf.settings is settings and shelf.guild_ids is None
    assert shelf.readable_in(123, {4}, set()) and shelf.readable_in(None, set(), set())


def test_shelves_from_a_settings_toml_with_derived_index_and_feedback(two_shelves):
    bees, ships = configured_shelves(load_settings())
    assert (bees.name, ships.name) == ("bees", "ships")
    data_dir = bees.settings.data_dir
    assert bees.settings.corpus_dir == Path("bees") and bees.settings.index_dir == default_index_dir(Path("bees"), data_dir)
    assert bees.settings.feedback_db == data_dir / "feedback-bees.sqlite"
    assert ships.settings.index_dir == Path("var/ships-index") and ships.private and not bees.private
    assert bees.uploader_role_ids == {9} and ships.channel_ids == {20}
    assert shelf_named(load_settings(), "ships").settings.corpus_dir == Path("ships")


def test_shelves_from_the_environment_as_json(tmp_path, monkeypatch):
    monkeypatch.setenv("VERBATIM_SHELVES", json.dumps({"docs": {"corpus_dir": "~/docs", "guild_ids": [5]}}))
    monkeypatch.setenv("HOME", str(tmp_path))
    (shelf,) = configured_shelves(load_settings())
    assert shelf.settings.corpus_dir == tmp_path / "docs" and shelf.guild_ids == {5}


@pytest.mark.parametrize("shelves, named", [
    ({"docs": {"corpus_dir": "d", "guild_ids": ["abc"]}}, "setting shelves.docs.guild_ids.0 (VERBATIM_SHELVES)"),
    ({"docs": {"corpus_dir": "d", "guild_id": [1]}}, "setting shelves.docs.guild_id (VERBATIM_SHELVES)"),
    ({"docs": {"guild_ids": [1]}}, "setting shelves.docs.corpus_dir (VERBATIM_SHELVES)"),
    ({"docs": {"corpus_dir": "d", "channel_ids": [3]}}, "set guild_ids too"),
    ({"Bad Name": {"corpus_dir": "d"}}, "shelf name 'Bad Name' must be"),
    ({"a": {"corpus_dir": "d", "guild_ids": [1]}, "b": {"corpus_dir": "e", "guild_ids": [1]}},
     "shelves a and b have the same readers, so b would never be used"),
])
def test_a_bad_shelf_is_one_line_naming_the_field(monkeypatch, shelves, named):
    monkeypatch.setenv("VERBATIM_SHELVES", json.dumps(shelves))
    with pytest.raises(InvalidSetting) as raised:
        load_settings()
    assert named in str(raised.value) and "\n" not in str(raised.value)


def _shelf(name, guilds, channels=(), roles=()):
    return Shelf(name, None, frozenset(guilds), frozenset(channels), frozenset(roles))


SERVER = _shelf("server", [1])
CHANNEL = _shelf("channel", [1], channels=[10])
STAFF = _shelf("staff", [1], roles=[5])
STAFF_CHANNEL = _shelf("staff-channel", [1], channels=[10], roles=[5])
OTHER = _shelf("other", [2])


def test_a_channel_shelf_wins_over_a_server_shelf_and_roles_narrow_further():
    shelves = [SERVER, CHANNEL, STAFF, STAFF_CHANNEL, OTHER]
    assert shelf_for(shelves, 1, {11}, set()) is SERVER
    assert shelf_for(shelves, 1, {10}, set()) is CHANNEL
    assert shelf_for(shelves, 1, {99, 10}, set()) is CHANNEL  # a thread (99) of the channel
    assert shelf_for(shelves, 1, {11}, {5}) is STAFF
    assert shelf_for(shelves, 1, {10}, {5}) is STAFF_CHANNEL
    assert shelf_for(shelves, 2, {10}, {5}) is OTHER
    assert shelf_for(shelves, 3, {10}, {5}) is None and shelf_for(shelves, None, set(), set()) is None
    assert shelf_for([CHANNEL], 1, {11}, set()) is None  # only its channel


def test_ties_go_to_the_first_shelf_listed():
    staff, helpers = _shelf("staff", [1], roles=[5]), _shelf("helpers", [1], roles=[6])
    assert shelf_for([staff, helpers], 1, {10}, {5, 6}) is staff
    assert shelf_for([helpers, staff], 1, {10}, {5, 6}) is helpers


ids = st.frozensets(st.integers(1, 4), max_size=3)


@given(st.lists(st.tuples(ids, ids, ids), max_size=6), st.integers(1, 4), ids, ids)
def test_the_chosen_shelf_is_readable_there_and_none_readable_is_more_specific(audiences, guild, channels, roles):
    shelves = [_shelf(f"s{i}", g or {1}, c, r) for i, (g, c, r) in enumerate(audiences)]
    chosen = shelf_for(shelves, guild, channels, roles)
    readable = [shelf for shelf in shelves if shelf.readable_in(guild, channels, roles)]
    if chosen is None:
        assert not readable
    else:
        assert chosen.readable_in(guild, channels, roles) and chosen.guild_ids and guild in chosen.guild_ids
        assert all(shelf.specificity <= chosen.specificity for shelf in readable)
        assert not any(shelf.specificity == chosen.specificity for shelf in readable[:readable.index(chosen)])


def test_unknown_shelf_names_the_known_ones(two_shelves):
    with pytest.raises(UnknownShelf, match="no shelf named 'cats'; the shelves are: bees, ships"):
        shelf_named(load_settings(), "cats")


def test_shelf_flag_builds_asks_and_lists_each_shelf_apart(two_shelves, capsys):
    assert main(["shelf", "list", "--json"]) == EXIT_OK
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(s["name"], s["documents"], s["guild_ids"]) for s in listed] == [("bees", None, [1]), ("ships", None, [2])]
    assert main(["index", "build", "--shelf", "bees"]) == EXIT_OK
    assert main(["--shelf", "ships", "index", "build"]) == EXIT_OK
    capsys.readouterr()
    assert main(["ask", "--shelf", "bees", "How many eggs does the queen lay a day?"]) == EXIT_OK
    assert "bees.txt:1" in capsys.readouterr().out
    # The other shelf's index holds no bees.
    assert main(["ask", "--shelf", "ships", "How many eggs does the queen lay a day?"]) == EXIT_NOT_ANSWERED
    assert "bees.txt" not in capsys.readouterr().out
    assert main(["index", "status", "--shelf", "ships", "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["documents"] == 1
    assert main(["index", "show", "--shelf", "ships", "ships.txt"]) == EXIT_OK
    assert capsys.readouterr().out == SHIPS
    assert main(["shelf", "list"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"bees: bees -> {two_shelves}/data/index/bees-") and "(1 document); read in servers 1" in lines[0]
    assert lines[1] == "ships: ships -> var/ships-index (1 document); read in servers 2; channels 20; roles 7"
    assert main(["feedback", "export", "--shelf", "bees"]) == EXIT_OK


def test_unknown_shelf_or_shelf_with_corpus_is_one_line_exit_two(two_shelves, capsys):
    assert main(["ask", "--shelf", "cats", "Any question?"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err == "verbatim: error: no shelf named 'cats'; the shelves are: bees, ships (see `verbatim shelf list`)\n"
    assert main(["ask", "--shelf", "bees", "--corpus", "bees", "Any question?"]) == EXIT_ERROR
    assert capsys.readouterr().err.count("\n") == 1


def test_a_settings_toml_that_does_not_parse_is_one_line(tmp_path, capsys):
    (tmp_path / "verbatim.toml").write_text("[shelves.a\ncorpus_dir = 'x'\n")
    assert main(["shelf", "list"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("verbatim: error: cannot read verbatim.toml") and "line 1" in err and err.count("\n") == 1


def test_verbatim_toml_overrides_the_defaults_and_the_environment_overrides_it(tmp_path, monkeypatch):
    (tmp_path / "verbatim.toml").write_text("top_quotes = 4\n")
    settings = load_settings()
    assert settings.top_quotes == 4 and settings.model == "all-MiniLM-L6-v2" and settings.shelves == {}
    monkeypatch.setenv("VERBATIM_TOP_QUOTES", "5")
    assert load_settings().top_quotes == 5


@pytest.mark.parametrize("shelves, named", [
    ({"a": {"corpus_dir": "bees", "index_dir": "shared", "guild_ids": [1]},
      "b": {"corpus_dir": "ships", "index_dir": "shared", "guild_ids": [2]}},
     "settings shelves.a.index_dir and shelves.b.index_dir are the same folder (shared)"),
    ({"a": {"corpus_dir": "bees", "guild_ids": [1]}, "b": {"corpus_dir": "./bees", "guild_ids": [2]}},
     "settings shelves.a.corpus_dir and shelves.b.corpus_dir are the same folder (bees)"),
    ({"a": {"corpus_dir": "bees", "index_dir": "ships", "guild_ids": [1]},
      "b": {"corpus_dir": "ships", "guild_ids": [2]}},
     "settings shelves.a.index_dir and shelves.b.corpus_dir are the same folder (ships)"),
    ({"a": {"corpus_dir": "", "guild_ids": [1]}}, "setting shelves.a.corpus_dir is empty"),
])
def test_shelves_that_would_collide_are_refused_by_the_commands_that_read_shelves_only(
        shelves, named, tmp_path, monkeypatch, capsys):
    for name, text in (("bees", BEES), ("ships", SHIPS)):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.txt").write_text(text)
    monkeypatch.setenv("VERBATIM_CACHE_DIR", str(SHARED_CACHE))
    monkeypatch.setenv("VERBATIM_SHELVES", json.dumps(shelves))
    for command in (["shelf", "list"], ["ask", "--shelf", "a", "How many eggs?"], ["index", "build", "--shelf", "a"]):
        assert main(command) == EXIT_ERROR
        err = capsys.readouterr().err
        assert err.startswith("verbatim: error: ") and named in err and err.count("\n") == 1
    assert not (tmp_path / "shared").exists()


def test_shelves_that_collide_do_not_stop_a_command_that_reads_no_shelf(tmp_path, monkeypatch):
    (tmp_path / "bees").mkdir()
    (tmp_path / "bees" / "bees.txt").write_text(BEES)
    monkeypatch.setenv("VERBATIM_CACHE_DIR", str(SHARED_CACHE))
    monkeypatch.setenv("VERBATIM_SHELVES", json.dumps({
        "a": {"corpus_dir": "bees", "index_dir": "shared", "guild_ids": [1]},
        "b": {"corpus_dir": "ships", "index_dir": "shared", "guild_ids": [2]}}))
    monkeypatch.setenv("VERBATIM_UPLOAD_MAX_MB", "inf")  # only /add sizes uploads
    assert main(["index", "build", "--corpus", "bees", "--index", "bees-index"]) == EXIT_OK
    assert main(["ask", "--corpus", "bees", "--index", "bees-index", "How many eggs does the queen lay?"]) == EXIT_OK


def test_an_empty_corpus_setting_is_named_not_taken_for_the_working_directory(tmp_path):
    with pytest.raises(InvalidSetting, match=r"^setting corpus_dir \(VERBATIM_CORPUS_DIR\) is '': an empty path"):
        load_settings(corpus_dir="")


def test_a_shelfs_empty_index_or_feedback_setting_means_unset_not_the_working_directory(tmp_path, monkeypatch):
    blank = {"a": {"corpus_dir": "bees", "index_dir": " ", "feedback_db": ""}}
    monkeypatch.setenv("VERBATIM_SHELVES", json.dumps(blank))
    settings = load_settings()
    (shelf,) = configured_shelves(settings)
    assert shelf.settings.index_dir == default_index_dir(Path("bees"), settings.data_dir)
    assert shelf.settings.feedback_db == settings.data_dir / "feedback-a.sqlite"
