"""A build killed with SIGKILL at any moment leaves the previous index answering as before.

Random moments rarely land inside the publish window (a few milliseconds), so
it is also killed there on purpose: a subprocess build whose store functions
kill it between fsyncing the generation and renaming it into place, between
the rename and the pointer swap, and between fsyncing the new pointer and
renaming it over the old one.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from bot.answering.answer import Answerer
from config import Settings
from index.build import build_index
from index.storage import store
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
        generation_before, _ = _answer(settings)
        # Each round changes the corpus so that the build has real work to do.
        cat_food = f"tuna, round {round_number}"
        write_corpus(settings.corpus_dir.parent, {"cat.txt": f"The keepers feed the lighthouse cat {cat_food} every evening."})
        child = subprocess.Popen(_build_command(settings), cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, window))
        child.send_signal(signal.SIGKILL)
        child.wait()
        generation_after, answer_after = _answer(settings)  # must load and answer, whatever the moment of the kill
        if generation_after == generation_before:
            outcomes.append("old")  # its quote of cat.txt is withheld: the file no longer says it
        else:
            assert cat_food in answer_after, answer_after
            outcomes.append("new")
    # The next build cleans up what the dead ones left behind.
    build_index(settings)
    leftovers = [p.name for p in settings.index_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers
    return outcomes, window


def _answer(settings: Settings) -> tuple[str, str]:
    """The generation that answers, and its quote of cat.txt ("" where the file no longer holds it)."""
    answerer = Answerer(settings)
    answer = answerer.answer(QUESTION)
    assert answer.answered or answer.stale == ("cat.txt",)
    return answerer.searcher.generation.name, next((q.text for q in answer.quotes if q.source == "cat.txt"), "")


def test_builds_killed_at_random_moments_never_break_the_index(tmp_path):
    write_corpus(tmp_path, {**BASE, "cat.txt": "The keepers feed the lighthouse cat sardines every evening."})
    settings = make_settings(tmp_path)
    build_index(settings)
    outcomes, _ = kill_builds(settings, kills=4)
    assert len(outcomes) == 4
    live = store.current_generation(settings.index_dir)
    store.verify(live, store.Manifest.read(live))  # whole, every file as its manifest says


# Run as `python -c KILLED_BUILD POINT ARGS...`: a real build that kills itself at POINT.
KILLED_BUILD = """
import os, signal, sys, types
from pathlib import Path
from bot.cli.main import main
from index.storage import store

point = sys.argv[1]
def die():
    os.kill(os.getpid(), signal.SIGKILL)

if point == "before-rename":
    fsync = store._fsync_path
    def fsync_then_die(path):
        fsync(path)
        if path.name.startswith(store.BUILDING_PREFIX):  # the directory itself: the last fsync before the rename
            die()
    store._fsync_path = fsync_then_die
elif point == "before-pointer":
    write = store._write_durably
    def die_before_pointer(path, content):
        if path.name == store.CURRENT:
            die()
        write(path, content)
    store._write_durably = die_before_pointer
elif point == "before-pointer-rename":
    def replace(source, target):
        if Path(target).name == store.CURRENT:
            die()
        os.replace(source, target)
    store.os = types.SimpleNamespace(**{**vars(os), "replace": replace})
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("point", ["before-rename", "before-pointer", "before-pointer-rename"])
def test_a_build_killed_inside_the_publish_window_leaves_the_old_index_and_is_cleaned_up(tmp_path, point):
    write_corpus(tmp_path, {**BASE, "cat.txt": "The keepers feed the lighthouse cat sardines every evening."})
    settings = make_settings(tmp_path)
    build_index(settings)
    live = store.current_generation(settings.index_dir)
    write_corpus(tmp_path, {"cat.txt": "The keepers feed the lighthouse cat tuna every evening."})
    env = {**os.environ, "VERBATIM_CACHE_DIR": str(settings.cache_path)}
    killed = subprocess.run([sys.executable, "-c", KILLED_BUILD, point, *_build_command(settings)[3:]],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = {p.name for p in settings.index_dir.iterdir()} - {live.name, store.CURRENT, "build.lock"}
    assert left, "the build died before its publish window"
    # Readers still get the old index, whole.
    assert store.current_generation(settings.index_dir) == live
    assert _answer(settings) == (live.name, "")  # its sardines are no longer in cat.txt: never quoted
    # The next build publishes the new text and removes what the dead one left.
    summary = build_index(settings)
    assert not summary.up_to_date and "tuna" in _answer(settings)[1]
    remaining = sorted(p.name for p in settings.index_dir.iterdir())
    assert remaining == sorted(["CURRENT", "build.lock", live.name, summary.generation]), remaining
