"""A build killed with SIGKILL at any moment leaves the previous index answering as before."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from bot.answer import Answerer
from config import Settings
from index import store
from index.build import build_index
from tests.conftest import ROOT, make_settings, write_corpus

QUESTION = "What do the keepers feed the lighthouse cat?"
BASE = {f"doc{n:02d}.txt": f"Document {n} talks about topic number {n} at some length. It has a second sentence too."
        for n in range(30)}


def _build_command(settings: Settings) -> list[str]:
    return [sys.executable, "-m", "bot.cli", "index", "build", "--corpus", str(settings.corpus_dir),
            "--index", str(settings.index_dir)]


def kill_builds(settings: Settings, kills: int, seed: int = 0) -> tuple[list[str], float]:
    """Kill `kills` builds at random moments of a build's duration; return what the index
    answered after each ('old' or 'new') and that duration."""
    env = {**os.environ, "VERBATIM_CACHE_DIR": str(settings.cache_path)}
    rng = random.Random(seed)
    # Kill moments are drawn from the length of a whole build, measured here.
    write_corpus(settings.corpus_dir.parent, {"cat.txt": "The keepers feed the lighthouse cat tuna, to time a build."})
    started = time.perf_counter()
    subprocess.run(_build_command(settings), cwd=ROOT, env=env, capture_output=True, check=True)
    window = time.perf_counter() - started
    outcomes = []
    for round_number in range(kills):
        answer_before = _answer(settings)
        # Each round changes the corpus so that the build has real work to do.
        cat_food = f"tuna, round {round_number}"
        write_corpus(settings.corpus_dir.parent, {"cat.txt": f"The keepers feed the lighthouse cat {cat_food} every evening."})
        child = subprocess.Popen(_build_command(settings), cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, window))
        child.send_signal(signal.SIGKILL)
        child.wait()
        answer_after = _answer(settings)  # must load and answer, whatever the moment of the kill
        if answer_after == answer_before:
            outcomes.append("old")
        else:
            assert cat_food in answer_after, answer_after
            outcomes.append("new")
    # The next build cleans up what the dead ones left behind.
    build_index(settings)
    leftovers = [p.name for p in settings.index_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers
    return outcomes, window


def _answer(settings: Settings) -> str:
    answer = Answerer(settings).answer(QUESTION)
    assert answer.answered
    return answer.quotes[0].text


def test_builds_killed_at_random_moments_never_break_the_index(tmp_path):
    write_corpus(tmp_path, {**BASE, "cat.txt": "The keepers feed the lighthouse cat sardines every evening."})
    settings = make_settings(tmp_path)
    build_index(settings)
    outcomes, _ = kill_builds(settings, kills=4)
    assert set(outcomes) <= {"old", "new"}
    assert store.current_generation(settings.index_dir).is_dir()
