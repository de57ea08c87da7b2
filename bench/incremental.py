"""Rebuild cost after changing 1 document of 1,000, against a full build, through the CLI.

Each build is a fresh `verbatim index build` process, so start-up and model
loading are paid by all; the no-op rebuild measures that floor, and the rebuild's
own work is its time minus the floor. Writes bench/results/incremental.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, write_results
from corpus1000 import write_1000

VERBATIM = str(Path(sys.executable).with_name("verbatim"))


def build(env: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    child = subprocess.run([VERBATIM, "index", "build", "--json"], env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        paths = write_1000(scratch / "corpus")
        env = {**os.environ, "VERBATIM_CORPUS_DIR": str(scratch / "corpus"), "VERBATIM_INDEX_DIR": str(scratch / "index"),
               "VERBATIM_CACHE_DIR": str(scratch / "cache")}
        # Warm the ONNX export (a once-per-machine cost) into this scratch cache, then drop the embedding cache.
        build(env)
        (scratch / "cache" / "embeddings.sqlite").unlink()
        started = time.perf_counter()
        child = subprocess.run([VERBATIM, "index", "build", "--full", "--json"], env=env, capture_output=True, text=True, check=True)
        full_wall, full = time.perf_counter() - started, json.loads(child.stdout.strip().splitlines()[-1])
        noops = [build(env)[0] for _ in range(3)]
        noop = sorted(noops)[1]
        changes = []
        for round_number in range(3):
            with paths[round_number * 100].open("a", encoding="utf-8") as stream:
                stream.write(f"\nAn added closing sentence, revision {round_number}.\n")
            changes.append(build(env))
        change_wall = sorted(c[0] for c in changes)[1]
        change = changes[0][1]
        started = time.perf_counter()
        subprocess.run([VERBATIM, "--help"], capture_output=True, check=True)
        startup = time.perf_counter() - started
    work_full, work_change = full_wall - noop, max(0.0, change_wall - noop)
    lines = [
        f"Measured by `make bench-incremental` on {machine()}, {time.strftime('%Y-%m-%d')}: 1,000 documents "
        f"({full['passages']:,} passages, {full['sentences']:,} sentences), each build a fresh `verbatim index build` process.",
        "",
        "| build | wall s | texts embedded |",
        "|---|---|---|",
        f"| full (empty embedding cache) | {full_wall:.1f} | {full['embedded']:,} |",
        f"| no-op rebuild (nothing changed; median of 3) | {noop:.2f} | 0 |",
        f"| 1 document changed (median of 3) | {change_wall:.2f} | {change['embedded']} |",
        "",
        f"The rebuild's own work (wall minus the no-op floor): {work_change:.2f} s against {work_full:.1f} s for a full build, "
        f"**{100 * work_change / work_full:.1f}%**. Process start-up alone (`verbatim --help`): {startup:.2f} s; "
        "the no-op floor also hashes every file and compares it with the index.",
    ]
    write_results("incremental.md", lines)


if __name__ == "__main__":
    main()
