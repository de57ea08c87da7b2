"""`verbatim discord` start-up failures, run as the real CLI in a subprocess.

Only Discord's address is changed (discord.py's `Route.BASE`), to a loopback port:
nothing leaves the machine.
"""

import os
import signal
import socket
import subprocess
import sys

from tests.conftest import ROOT

RUN = "import sys, discord.http; discord.http.Route.BASE = {base!r}; from bot.cli.main import main; sys.exit(main(['discord']))"


def start(tmp_path, base: str) -> subprocess.Popen:
    env = {**os.environ, "VERBATIM_DISCORD_TOKEN": "not-a-real-token", "HF_HUB_OFFLINE": "1",
           "VERBATIM_FEEDBACK_DB": str(tmp_path / "feedback.sqlite"), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", RUN.format(base=base)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe is closed


def test_no_route_to_discord_is_one_line_and_exit_2(tmp_path):
    bot = start(tmp_path, f"http://127.0.0.1:{closed_port()}/api/v10")
    out, err = bot.communicate(timeout=60)
    assert bot.returncode == 2 and out == ""
    assert err.startswith("verbatim: error: cannot reach Discord: ") and err.count("\n") == 1, err
    assert "not-a-real-token" not in err


def test_ctrl_c_while_connecting_exits_130_quietly(tmp_path):
    with socket.socket() as silent:  # accepts the connection, never answers: start-up hangs here
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(60)
        bot = start(tmp_path, f"http://127.0.0.1:{silent.getsockname()[1]}/api/v10")
        connection, _ = silent.accept()  # the bot is now mid-start
        bot.send_signal(signal.SIGINT)
        out, err = bot.communicate(timeout=60)
        connection.close()
    assert bot.returncode == 130 and out == "" and err == "verbatim: interrupted\n"
