"""The exit-code contract, checked on the real CLI in a subprocess for every command.

0 answered / done, 1 not answered, 2 error with exactly one line on stderr, 130
interrupted; never a traceback. Each process gets a fresh HOME and no VERBATIM_*
variables but the ones a test sets; the ONNX export comes from the session's cache.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from index.build import build_index
from tests.conftest import SEED, SHARED_CACHE, make_settings

QUESTION = "How many troops would Pakistan send to Gaza?"
OFF_TOPIC = "Who won the football World Cup in 2022?"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A directory holding corpus/ (the seed article) and index/ built from it."""
    root = tmp_path_factory.mktemp("faults")
    (root / "corpus").mkdir()
    shutil.copy(SEED, root / "corpus" / SEED.name)
    build_index(make_settings(root))
    return root


def run(
    arguments: list[str | bytes], cwd: Path, env: dict[str, str] | None = None, stdin: bytes = b"",
    home: Path | None = None, python: list[str] | None = None,
) -> subprocess.CompletedProcess:
    """`python -m bot.cli ARGUMENTS` with a clean environment."""
    return subprocess.run(
        [*(python or [sys.executable, "-m", "bot.cli"]), *arguments], cwd=cwd, env=clean_env(cwd, env, home),
        input=stdin, capture_output=True, timeout=120, preexec_fn=interruptible,
    )


def interruptible() -> None:
    """Ctrl-C's default in the child: a suite started in the background (`cmd &` in a script) inherits
    SIGINT ignored, and Python then never turns it into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def clean_env(cwd: Path, extra: dict[str, str] | None = None, home: Path | None = None) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("VERBATIM_")}
    env.update(HF_HUB_OFFLINE="1", HOME=str(home or cwd), VERBATIM_CACHE_DIR=str(SHARED_CACHE))
    env.update(extra or {})
    return env


def index_options(built: Path) -> list[str]:
    return ["--corpus", str(built / "corpus"), "--index", str(built / "index")]


def assert_contract(result: subprocess.CompletedProcess, code: int) -> str:
    """Check the exit code and stderr's shape; return stderr."""
    err = result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert result.returncode == code, (result.returncode, err)
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("verbatim"), err
    return err


# --- every command: its success, its failure ---------------------------------------------


@pytest.mark.parametrize("command", [[], ["index"], ["index", "build"], ["index", "status"], ["index", "show"],
                                     ["index", "watch"], ["ask"], ["chat"], ["eval"], ["discord"],
                                     ["feedback"], ["feedback", "export"]])
def test_help_exits_zero_for_every_command(command, tmp_path):
    result = run([*command, "--help"], tmp_path)
    assert_contract(result, 0)
    assert b"usage: verbatim" in result.stdout


def test_every_command_answers_or_fails_in_one_line(built, tmp_path):
    options = index_options(built)
    assert_contract(run([*options, "index", "build"], tmp_path), 0)
    assert_contract(run([*options, "index", "status"], tmp_path), 0)
    assert_contract(run([*options, "index", "show", SEED.name], tmp_path), 0)
    assert_contract(run([*options, "ask", QUESTION], tmp_path), 0)
    assert_contract(run([*options, "ask", OFF_TOPIC], tmp_path), 1)
    assert_contract(run([*options, "chat"], tmp_path, stdin=f"{QUESTION}\n".encode()), 0)
    assert_contract(run(["feedback", "export"], tmp_path), 0)
    missing = ["--corpus", str(tmp_path / "nothing"), "--index", str(tmp_path / "no-index")]
    for failing in (["index", "build"], ["index", "status"], ["index", "show", "x.txt"], ["index", "watch"],
                    ["ask", QUESTION], ["chat"], ["eval", str(tmp_path / "missing.json")], ["discord"]):
        assert_contract(run([*missing, *failing], tmp_path), 2)
    assert_contract(run([*options, "index", "show", "not-indexed.txt"], tmp_path), 2)
    assert_contract(run(["no-such-command"], tmp_path), 2)


def test_the_command_skips_teardown_but_not_its_output_or_exit_handlers(built, tmp_path):
    # `verbatim` ends with os._exit (bot.cli.main.run): what is printed and what atexit promised
    # (a cluster's shutdown, say) must both still happen.
    marker = tmp_path / "exit-handler-ran"
    program = (f"import atexit, pathlib, sys; atexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes'); "
               "from bot.cli.main import run; run()")
    # Buffered, as a user's pipe is (an empty PYTHONUNBUFFERED is unset), so a lost flush shows.
    result = run([*index_options(built), "ask", QUESTION], tmp_path, {"PYTHONUNBUFFERED": ""},
                 python=[sys.executable, "-c", program])
    assert_contract(result, 0)
    assert "3,500 troops" in result.stdout.decode() and marker.read_text() == "yes"


# --- 1. questions that aren't UTF-8 ---------------------------------------------------


def test_a_question_argument_that_is_not_utf8_is_answered_with_a_note(built, tmp_path):
    result = run([*index_options(built), "ask", b"How many troops would Pakistan send to Gaza? \xff"], tmp_path)
    err = assert_contract(result, 0)
    assert "not valid UTF-8" in err and "3,500 troops" in result.stdout.decode()


def test_a_question_of_nothing_but_bad_bytes_is_one_line(built, tmp_path):
    err = assert_contract(run([*index_options(built), "ask", b"\xff\xfe"], tmp_path), 2)
    assert "no words" in err


def test_a_stdin_line_that_is_not_utf8_spoils_no_later_question(built, tmp_path):
    stdin = b"vacation days \xff\n" + QUESTION.encode() + b"\n"
    result = run([*index_options(built), "ask"], tmp_path, stdin=stdin)
    err = assert_contract(result, 1)  # the first question is not answered
    out = result.stdout.decode()
    assert "line 1 of stdin is not valid UTF-8" in err
    assert "Q: vacation days \N{REPLACEMENT CHARACTER}" in out and f"Q: {QUESTION}" in out and "3,500 troops" in out


def test_chat_survives_a_line_that_is_not_utf8(built, tmp_path):
    result = run([*index_options(built), "chat"], tmp_path, stdin=b"troops \xff\n" + QUESTION.encode() + b"\n")
    assert_contract(result, 0)
    assert "3,500 troops" in result.stdout.decode()


# --- 2. settings that don't validate ---------------------------------------------------


@pytest.mark.parametrize(("name", "value", "expects"), [
    ("VERBATIM_TOP_QUOTES", "abc", "valid integer"),
    ("VERBATIM_TOP_QUOTES", "0", "greater than or equal to 1"),
    ("VERBATIM_DISCORD_GUILD_IDS", "123", "JSON list"),
    ("VERBATIM_DISCORD_GUILD_IDS", "abc", "JSON list"),
])
def test_a_setting_that_does_not_validate_is_named_in_one_line(name, value, expects, built, tmp_path):
    # A Discord setting fails only the command that reads it (tests/test_cli_habits.py: `ask` still answers).
    command = ["discord"] if "DISCORD" in name else [*index_options(built), "ask", QUESTION]
    err = assert_contract(run(command, tmp_path, env={name: value}), 2)
    assert name in err and expects in err


def test_a_bad_setting_in_dotenv_is_named_too(tmp_path):
    (tmp_path / ".env").write_text("VERBATIM_MAX_FILE_MB=lots\n")
    err = assert_contract(run(["index", "status"], tmp_path), 2)
    assert "VERBATIM_MAX_FILE_MB" in err and "'lots'" in err


# --- 3. an index directory that can't be created or written ------------------------------


def test_an_index_directory_that_cannot_be_created_is_one_line(built, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    for index in ("/dev/null/x", str(a_file / "index")):
        options = ["--corpus", str(built / "corpus"), "--index", index]
        err = assert_contract(run([*options, "index", "build"], tmp_path), 2)
        assert "index directory" in err and index in err
    assert a_file.read_text() == "not a directory"
    # Reading commands fail on the same path in one line too.
    assert_contract(run(["--index", "/dev/null/x", "ask", QUESTION], tmp_path), 2)
    assert_contract(run(["--index", "/dev/null/x", "index", "status"], tmp_path), 2)


def test_a_cache_directory_that_cannot_be_created_is_one_line(built, tmp_path):
    env = {"VERBATIM_CACHE_DIR": "/dev/null/cache"}
    err = assert_contract(run([*index_options(built), "index", "build"], tmp_path, env=env), 2)
    assert "cache directory" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_an_index_directory_without_write_permission_is_one_line(built, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    options = ["--corpus", str(built / "corpus"), "--index", str(locked)]
    assert "index directory" in assert_contract(run([*options, "index", "build"], tmp_path), 2)


# --- 4. feedback export -----------------------------------------------------------------


def test_feedback_export_to_a_missing_directory_is_one_line_and_creates_no_database(tmp_path):
    env = {"VERBATIM_FEEDBACK_DB": str(tmp_path / "var" / "feedback.sqlite")}
    err = assert_contract(run(["feedback", "export", "-o", "/missing/dir/x.jsonl"], tmp_path, env=env), 2)
    assert "/missing/dir/x.jsonl" in err
    result = run(["feedback", "export", "-o", str(tmp_path / "out.jsonl")], tmp_path, env=env)
    assert_contract(result, 0)
    assert (tmp_path / "out.jsonl").read_text() == "" and not (tmp_path / "var").exists()


# --- 5. Ctrl-C during start-up ------------------------------------------------------------

# Runs the CLI as its console script does, after arming a trip that sends SIGINT
# to the process the moment MODULE is first imported: Ctrl-C at a known point of
# start-up, with no sleeps.
TRIPWIRE = """
import os, signal, sys

MODULE = sys.argv.pop(1)

class Tripwire:
    def find_spec(self, name, path=None, target=None):
        if name == MODULE:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, Tripwire())
from bot.cli.main import main
sys.exit(main())
"""


@pytest.mark.parametrize("module", ["pydantic_settings", "faiss", "onnxruntime"])
def test_ctrl_c_during_start_up_exits_130_without_a_traceback(module, built, tmp_path):
    result = run([module, *index_options(built), "ask", QUESTION], tmp_path,
                 python=[sys.executable, "-c", TRIPWIRE])
    err = assert_contract(result, 130)
    assert err == "verbatim: interrupted\n"


def test_ctrl_c_while_chat_waits_exits_130(built, tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *index_options(built), "chat"], cwd=tmp_path, env=clean_env(tmp_path),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=interruptible,
    )
    try:
        # chat prints its greeting once the model and index are loaded, then waits on stdin.
        assert b"Ask a question" in process.stderr.readline()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130 and b"Traceback" not in err, err


# --- 6. --top --------------------------------------------------------------------------


@pytest.mark.parametrize("top", ["0", "-1", "11", "100", "three"])
def test_top_outside_1_to_10_is_a_one_line_usage_error(top, built, tmp_path):
    for command in (["ask", QUESTION], ["chat"]):
        err = assert_contract(run([*index_options(built), *command, "--top", top], tmp_path), 2)
        assert "--top" in err


def test_top_within_range_caps_the_quotes(built, tmp_path):
    result = run([*index_options(built), "ask", QUESTION, "--top", "1", "--json"], tmp_path)
    assert_contract(result, 0)
    assert len(json.loads(result.stdout)["quotes"]) == 1


# --- 7. several questions on stdin -----------------------------------------------------


def test_stdin_answers_are_labelled_and_the_exit_code_says_if_all_were_answered(built, tmp_path):
    options = [*index_options(built), "ask"]
    everything = run(options, tmp_path, stdin=f"{QUESTION}\n\nHow many troops might Pakistan deploy?\n".encode())
    assert_contract(everything, 0)
    out = everything.stdout.decode()
    assert out.startswith(f"Q: {QUESTION}\n> ") and "\n\nQ: How many troops might Pakistan deploy?\n> " in out
    assert_contract(run(options, tmp_path, stdin=f"{QUESTION}\n{OFF_TOPIC}\n".encode()), 1)
    assert_contract(run(options, tmp_path, stdin=f"{QUESTION}\n{'x' * 600}\n".encode()), 1)


# --- 11. nothing written outside the paths the settings name ------------------------------


def listing(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def test_build_and_ask_write_nothing_outside_index_cache_and_feedback(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    (work / "corpus").mkdir(parents=True)
    shutil.copy(SEED, work / "corpus" / SEED.name)
    before = listing(home)
    data = tmp_path / "data"
    env = {"VERBATIM_CORPUS_DIR": "corpus", "VERBATIM_DATA_DIR": str(data)}
    assert_contract(run(["index", "build"], work, env=env, home=home), 0)
    assert_contract(run(["ask", QUESTION], work, env=env, home=home), 0)
    assert_contract(run(["feedback", "export"], work, env=env, home=home), 0)
    assert listing(home) == before  # onnxruntime's telemetry wrote ~/.cache/Microsoft/DeveloperTools
    assert listing(work) == {"corpus", f"corpus/{SEED.name}"}  # nothing where the commands ran
    assert {path for path in listing(data) if "/" not in path} == {"index"}
