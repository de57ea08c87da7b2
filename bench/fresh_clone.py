"""Time the README's two commands on a fresh clone: bench/results/fresh-clone.json (`make bench-fresh-clone`).

Clones the repository's committed HEAD into a temporary directory, then times `make ask` (set-up, index
seeds/, answer) and `make test` there, as a newcomer would run them. Run it on an otherwise idle machine:
the figures go into the README. Index and cache go to a temporary user data directory, and VERBATIM_*
variables are dropped, so nothing this machine built before is reused; pip's download cache is the machine's own.
Standard library only, so it runs before anything is installed.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TARGETS = ("ask", "test")


class TargetFailed(Exception):
    """A make target exited with an error, so its time is not a figure."""


def fresh_clone(source: Path, into: Path) -> Path:
    """A clone of source's committed HEAD (no hard links, so nothing is shared with the source)."""
    clone = into / "verbatim"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(source), str(clone)], check=True)
    return clone


def newcomer_environment(data_home: Path) -> dict[str, str]:
    """This environment without VERBATIM_* settings, with an empty user data directory."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("VERBATIM_")}
    env["XDG_DATA_HOME"] = str(data_home)
    return env


def timed_make(target: str, clone: Path, env: dict[str, str]) -> float:
    """Seconds `make TARGET` took in the clone; TargetFailed when it exits with an error."""
    started = time.perf_counter()
    completed = subprocess.run(["make", target], cwd=clone, env=env)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise TargetFailed(f"`make {target}` exited {completed.returncode} after {seconds:.0f} s on a fresh clone")
    return seconds


def measure(source: Path, workdir: Path, targets: tuple[str, ...] = TARGETS) -> dict:
    """Clone source into workdir and time each target there, in order."""
    clone = fresh_clone(source, workdir)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True, check=True).stdout.strip()
    env = newcomer_environment(workdir / "data")
    result = {"measured": datetime.datetime.now(datetime.UTC).date().isoformat(), "commit": commit,
              "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"}
    for target in targets:
        result[f"make_{target}_s"] = round(timed_make(target, clone, env), 1)
    return result


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="verbatim-fresh-clone-") as workdir:
        try:
            result = measure(ROOT, Path(workdir))
        except TargetFailed as error:
            print(f"fresh_clone: {error}; bench/results/fresh-clone.json left as it was", file=sys.stderr)
            return 1
    RESULTS.mkdir(parents=True, exist_ok=True)
    draft = RESULTS / "fresh-clone.json.tmp"
    draft.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    draft.replace(RESULTS / "fresh-clone.json")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
