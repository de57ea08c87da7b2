import io
import json

import pytest

from bot.cli.main import EXIT_ERROR, EXIT_NOT_ANSWERED, EXIT_OK, main


@pytest.fixture
def seed_index(seed_settings):
    return ["--corpus", str(seed_settings.corpus_dir), "--index", str(seed_settings.index_dir)]


def test_build_status_and_ask_with_json(seed_index, capsys):
    assert main(["index", "build", *seed_index]) == EXIT_OK
    assert "indexed 1 document (" in capsys.readouterr().out
    assert main(["index", "build", "--json", *seed_index]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["up_to_date"] is True
    assert main(["index", "status", "--json", *seed_index]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["freshness"] == "up to date"
    assert main([*seed_index, "ask", "How many troops would Pakistan send to Gaza?", "--json", "--top", "2"]) == EXIT_OK
    answer = json.loads(capsys.readouterr().out)
    assert set(answer) == {"question", "answered", "outcome", "quotes", "took_ms"} and answer["outcome"] == "answered"
    assert set(answer["quotes"][0]) == {"text", "source", "start", "end", "line", "score"}
    assert len(answer["quotes"]) <= 2 and "3,500 troops" in answer["quotes"][0]["text"]


def test_text_output_quotes_then_cites_and_refusal_exits_one(seed_index, capsys):
    main(["index", "build", *seed_index])
    capsys.readouterr()
    assert main(["ask", "How many troops would Pakistan send to Gaza?", *seed_index]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("> ") and "  — 000_23546ede53cb2a58.txt:" in out
    assert main(["ask", "Who won the football World Cup in 2022?", *seed_index]) == EXIT_NOT_ANSWERED
    assert "don't answer" in capsys.readouterr().out


def test_questions_from_stdin_one_json_line_each(seed_index, capsys, monkeypatch):
    main(["index", "build", *seed_index])
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO("How many troops would Pakistan send to Gaza?\n\n" + "x" * 600 + "\nWho won the football World Cup?\n"))
    # One question refused and one rejected: not every question was answered.
    assert main(["ask", "--json", *seed_index]) == EXIT_NOT_ANSWERED
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["answered"] for line in lines] == [True, False]
    assert "keep it under 500" in captured.err


def test_errors_are_one_line_on_stderr_with_a_nonzero_exit(tmp_path, capsys):
    assert main(["ask", "anything", "--index", str(tmp_path / "none")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "verbatim index build" in err
    assert main(["index", "build", "--corpus", str(tmp_path / "missing"), "--index", str(tmp_path / "i")]) == EXIT_ERROR
    assert "corpus directory not found" in capsys.readouterr().err
    assert main([]) == EXIT_ERROR


def test_help_is_available_everywhere(capsys):
    for command in ([], ["index"], ["index", "build"], ["ask"], ["chat"], ["eval"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--help"])
        assert exit_info.value.code == 0
    assert "Exit codes" in capsys.readouterr().out


def test_index_show_prints_the_stored_text_and_names_unknown_documents(seed_index, seed_settings, capsys):
    main(["index", "build", *seed_index])
    capsys.readouterr()
    assert main(["index", "show", "000_23546ede53cb2a58.txt", *seed_index]) == EXIT_OK
    assert capsys.readouterr().out == (seed_settings.corpus_dir / "000_23546ede53cb2a58.txt").read_text(encoding="utf-8")
    assert main(["index", "show", "nope.txt", *seed_index]) == EXIT_ERROR
    assert "not in the index" in capsys.readouterr().err


def test_discord_without_a_token_is_one_clear_line(capsys, monkeypatch):
    monkeypatch.delenv("VERBATIM_DISCORD_TOKEN", raising=False)
    assert main(["discord"]) == EXIT_ERROR
    assert "VERBATIM_DISCORD_TOKEN" in capsys.readouterr().err


def test_chat_answers_each_line_until_an_empty_one(seed_index, capsys, monkeypatch):
    main(["index", "build", *seed_index])
    capsys.readouterr()
    lines = iter(["How many troops would Pakistan send to Gaza?", "", "never asked"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert main(["chat", *seed_index]) == EXIT_OK
    assert "3,500 troops" in capsys.readouterr().out


def test_another_corpus_gets_its_own_index_and_leaves_the_first_one_answering(tmp_path, capsys, monkeypatch):
    from tests.conftest import SEED, SHARED_CACHE, write_corpus

    monkeypatch.setenv("VERBATIM_CACHE_DIR", str(SHARED_CACHE))
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    seeds.joinpath(SEED.name).write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    handbook = write_corpus(tmp_path, {"leave.txt": "Every employee gets twenty-five days of paid leave each year.\n"})
    assert main(["index", "build"]) == EXIT_OK  # corpus_dir defaults to seeds/
    assert main(["--corpus", str(handbook), "index", "build"]) == EXIT_OK
    capsys.readouterr()
    assert main(["ask", "How many troops would Pakistan send to Gaza?"]) == EXIT_OK
    assert "3,500 troops" in capsys.readouterr().out
    assert main(["--corpus", str(handbook), "ask", "How many days of paid leave do employees get?"]) == EXIT_OK
    assert "twenty-five days" in capsys.readouterr().out
    assert main(["--corpus", str(handbook), "index", "status", "--json"]) == EXIT_OK
    index_dir = json.loads(capsys.readouterr().out)["index_dir"]
    assert index_dir.startswith(str(tmp_path / "data" / "index" / "corpus-"))


def test_a_bad_top_is_a_usage_error_not_every_candidate(seed_index, capsys):
    for top in ("0", "-1", "100"):
        assert main(["ask", "How many troops?", "--top", top, *seed_index]) == EXIT_ERROR
        assert capsys.readouterr().err.count("\n") == 1
