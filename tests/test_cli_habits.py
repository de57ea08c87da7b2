"""The command line's habits: where indexes live, hints, version, help, colour, plurals, lenient settings."""

import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from bot.cli.main import EXIT_ERROR, EXIT_NOT_ANSWERED, EXIT_OK, main
from config import load_settings
from tests.conftest import SEED, SHARED_CACHE

QUESTION = "How many troops would Pakistan send to Gaza?"


@pytest.fixture
def handbook(tmp_path, monkeypatch) -> Path:
    """A corpus of the seed article beside two working directories; the session's cache is reused."""
    corpus = tmp_path / "handbook"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    for place in ("here", "elsewhere"):
        (tmp_path / place).mkdir()
    monkeypatch.setenv("VERBATIM_CACHE_DIR", str(SHARED_CACHE))
    monkeypatch.chdir(tmp_path / "here")
    return corpus


def test_the_default_index_lives_in_the_data_dir_wherever_the_command_runs(handbook, tmp_path, monkeypatch, capsys):
    assert main(["--corpus", str(handbook), "index", "build"]) == EXIT_OK
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["--corpus", str(handbook), "ask", QUESTION]) == EXIT_OK
    assert "3,500 troops" in capsys.readouterr().out
    # Nothing was written where the commands ran.
    assert not any((tmp_path / "here").iterdir()) and not any((tmp_path / "elsewhere").iterdir())
    assert (tmp_path / "data" / "index").is_dir()


@pytest.mark.skipif(sys.platform != "linux", reason="XDG_DATA_HOME is the Linux convention")
def test_unset_data_dir_is_the_platform_user_data_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("VERBATIM_DATA_DIR")
    settings = load_settings()
    data = tmp_path / "xdg-data" / "verbatim"  # conftest's XDG_DATA_HOME
    assert settings.data_dir == data and settings.cache_dir == data / "cache"
    assert settings.feedback_db == data / "feedback.sqlite" and settings.index_dir.parent == data / "index"


def test_an_index_built_under_var_in_the_working_directory_is_still_found(handbook, tmp_path, capsys):
    legacy_root = Path("var/index")  # the default before data_dir, relative to where a command ran
    default = load_settings(corpus_dir=handbook).index_dir
    legacy = legacy_root / default.name
    assert main(["--corpus", str(handbook), "--index", str(legacy), "index", "build"]) == EXIT_OK
    capsys.readouterr()
    assert load_settings(corpus_dir=handbook).index_dir == legacy
    assert main(["--corpus", str(handbook), "ask", QUESTION]) == EXIT_OK
    assert "3,500 troops" in capsys.readouterr().out
    assert not default.exists()


@pytest.mark.parametrize("options", [["--corpus", "{corpus}"], ["--corpus", "{corpus}", "--index", "{index}"]])
def test_the_no_index_hint_is_the_command_that_builds_the_index_asked_about(handbook, tmp_path, options, capsys):
    options = [option.format(corpus=handbook, index=tmp_path / "my index") for option in options]
    assert main([*options, "ask", QUESTION]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no index at" in err
    command = err.split("`")[1]
    assert command == shlex.join(["verbatim", "index", "build", *options])
    assert main(shlex.split(command)[1:]) == EXIT_OK
    assert main([*options, "ask", QUESTION]) == EXIT_OK


def test_the_no_index_hint_keeps_the_shelf(tmp_path, capsys):
    (tmp_path / "bees").mkdir()
    (tmp_path / "verbatim.toml").write_text('[shelves.bees]\ncorpus_dir = "bees"\n')
    assert main(["ask", "--shelf", "bees", QUESTION]) == EXIT_ERROR
    assert "`verbatim index build --shelf bees`" in capsys.readouterr().err


def test_source_add_names_the_build_of_the_same_index(handbook, capsys):
    assert main(["source", "add", "--corpus", str(handbook), "http://127.0.0.1:9/"]) == EXIT_OK
    assert f"`verbatim index build --corpus {handbook}` fetches it" in capsys.readouterr().err


def test_a_site_that_refuses_connections_is_one_line_with_the_real_reason_and_counted_once(tmp_path, capsys):
    from tests.web_server import Site, serve

    site = Site()
    site.html("/docs/", "Guide", ["The harbour lamp is lit at dusk by the keeper of the lighthouse."],
              ["/docs/a", "/docs/b"])
    for name in ("a", "b"):
        site.html(f"/docs/{name}", name, [f"Page {name} tells of the old stone bridge over the quiet river."])
    server = serve(site)
    options = ["--corpus", str(tmp_path / "corpus"), "--index", str(tmp_path / "index")]
    (tmp_path / "corpus").mkdir()
    (tmp_path / ".env").write_text("VERBATIM_WEB_DELAY_SECONDS=0\n")
    main(["source", "add", site.base + "/docs/", "--depth", "1", *options])
    assert main(["index", "build", *options]) == EXIT_OK
    site.stopped.set()
    server.shutdown()
    server.server_close()  # the port now refuses connections
    capsys.readouterr()
    assert main(["index", "build", *options]) == EXIT_OK
    out, err = capsys.readouterr()
    port = site.base.rsplit(":", 1)[1]
    assert err == (f"verbatim: note: {site.base}/docs/: not refreshed: cannot connect to 127.0.0.1:{port} "
                   "(connection refused) (3 pages kept as fetched before)\n")
    assert "3 unchanged, 0 skipped" in out


def test_counts_are_in_the_right_number():
    from index.build import BuildSummary
    from index.types import Skipped

    one = BuildSummary(1, 1, 1, (Skipped("a.bin", "unsupported type"),), 0.5, "gen", added=1, embedded=1)
    assert one.describe().startswith("indexed 1 document (1 added, 0 changed, 0 removed, 0 unchanged, 1 skipped): "
                                     "1 passage, 1 sentence, 1 text embedded")
    many = BuildSummary(2_000, 3_000, 9_000, (), 1.0, "gen", added=2_000, embedded=12_000)
    assert "indexed 2,000 documents" in many.describe() and "3,000 passages, 9,000 sentences, 12,000 texts" in many.describe()


def test_progress_says_what_it_counts():
    from bot.cli.main import progress_done

    assert progress_done("reading", 535_567, 535_567) == "535.6 kB/535.6 kB"
    assert progress_done("chunking", 5_000, 20_000) == "5,000/20,000 characters"
    assert progress_done("embedding", 3, 12) == "3/12 texts"



def test_version_comes_from_the_package_metadata(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out == f"verbatim {version('verbatim')}\n"


def test_ask_and_chat_come_first_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    section = capsys.readouterr().out.split("\n  COMMAND\n", 1)[1].split("\n\n")[0]
    commands = [line.split()[0] for line in section.splitlines() if line.startswith("    ") and line[4] != " "]
    assert commands[:3] == ["ask", "chat", "index"] and "discord" in commands


@pytest.fixture
def seed_options(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    monkeypatch.setenv("VERBATIM_CACHE_DIR", str(SHARED_CACHE))
    options = ["--corpus", str(corpus), "--index", str(tmp_path / "index")]
    assert main(["index", "build", *options]) == EXIT_OK
    return options


@pytest.mark.parametrize("value", ["123,456", '["not a number"]'])
def test_a_bad_discord_setting_fails_only_the_discord_command(seed_options, tmp_path, value, capsys):
    (tmp_path / ".env").write_text(f"VERBATIM_DISCORD_GUILD_IDS={value}\n")
    assert main([*seed_options, "ask", QUESTION]) == EXIT_OK
    assert main([*seed_options, "index", "status"]) == EXIT_OK
    capsys.readouterr()
    assert main(["discord"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("verbatim: error: setting discord_guild_ids (VERBATIM_DISCORD_GUILD_IDS)")


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_colour_in_a_terminal_only_and_never_in_the_quote(seed_options, monkeypatch, capsys):
    refused = "Who won the football World Cup in 2022?"
    capsys.readouterr()
    assert main([*seed_options, "ask", QUESTION]) == EXIT_OK
    assert main([*seed_options, "ask", refused]) == EXIT_NOT_ANSWERED
    plain = capsys.readouterr().out
    assert "\x1b" not in plain  # a pipe: byte for byte the plain text
    monkeypatch.setenv("FORCE_COLOR", "1")  # what rich treats as a colour terminal
    monkeypatch.setenv("TERM", "xterm-256color")
    main([*seed_options, "ask", QUESTION])
    main([*seed_options, "ask", refused])
    coloured = capsys.readouterr().out
    assert ANSI.sub("", coloured) == plain and coloured != plain
    for line in coloured.splitlines():
        if not line or line.startswith("> "):
            assert "\x1b" not in line  # quoted text is never painted
        else:
            assert line.startswith("  \x1b[") or line.startswith("\x1b[")  # citation, refusal
    main([*seed_options, "ask", QUESTION, "--json"])
    assert "\x1b" not in capsys.readouterr().out
    monkeypatch.setenv("NO_COLOR", "1")
    main([*seed_options, "ask", QUESTION])
    main([*seed_options, "ask", refused])
    assert capsys.readouterr().out == plain


def test_the_not_sure_caveat_is_painted_apart_from_the_quote():
    from bot.cli.render import NOT_SURE, render_text
    from bot.types import Answer, Quote

    closest = Quote("Close, but not quite.", "a.txt", 0, 21, 1, 0.4)
    answer = Answer("q", False, (), 1.0, closest=closest, not_sure=True)
    painted = render_text(answer, paint=lambda role, text: f"<{role}>{text}</{role}>")
    assert painted == f"<caveat>{NOT_SURE}</caveat>\n> Close, but not quite.\n  <citation>— a.txt:1</citation>\n"
    assert render_text(answer) == f"{NOT_SURE}\n> Close, but not quite.\n  — a.txt:1\n"
