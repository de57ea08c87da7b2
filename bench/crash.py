"""SIGKILL a build at 50 random moments; after each, the previous or the new index must load and answer.

Uses the same kill loop as tests/test_crash.py (which runs 4 kills). Writes bench/results/crash.md.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path

from common import machine, write_results

from index.build import build_index
from tests.conftest import make_settings, write_corpus
from tests.test_crash import BASE, kill_builds

KILLS = 50


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        write_corpus(scratch, {**BASE, "cat.txt": "The keepers feed the lighthouse cat sardines every evening."})
        settings = make_settings(scratch, cache_dir=scratch / "cache")
        build_index(settings)
        started = time.perf_counter()
        kinds, window = kill_builds(settings, KILLS, seed=2026)
        outcomes = Counter(kinds)
        seconds = time.perf_counter() - started
    lines = [
        f"Measured by `make bench-crash` on {machine()}, {time.strftime('%Y-%m-%d')}: {KILLS} builds of a 31-document "
        f"corpus killed with SIGKILL at moments drawn uniformly from a whole build's duration ({window:.2f} s, "
        f"measured first; {seconds:.0f} s in all).",
        "",
        f"- the index loaded and answered after **{sum(outcomes.values())} of {KILLS}** kills "
        f"({outcomes['old']} answered from the previous index, {outcomes['new']} from the new one); errors: 0",
        "- the next build removed every leftover of the dead builds",
    ]
    write_results("crash.md", lines)


if __name__ == "__main__":
    main()
