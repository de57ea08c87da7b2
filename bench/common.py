"""Shared helpers for the benchmarks: where the data is, timing, percentiles."""

from __future__ import annotations

import platform
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"
# The project's own cache (ONNX export, embeddings), wherever a benchmark runs from:
# the default cache_dir (var/cache) of a verbatim run from the repository root.
CACHE = ROOT / "var" / "cache"


def set_defaults(**values: object) -> None:
    """Write fitted values into config/defaults.toml, where settings read them."""
    path = ROOT / "config" / "defaults.toml"
    text = path.read_text(encoding="utf-8")
    for name, value in values.items():
        text = re.sub(rf"(?m)^{name} = .*$", f"{name} = {value}", text)
    path.write_text(text, encoding="utf-8")


def require_data(*names: str) -> list[Path]:
    """Paths of the shared data files, or exit 0 with a note when they are absent."""
    paths = [DATA / name for name in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"skipped: shared data not found ({', '.join(missing)})")
        sys.exit(0)
    return paths


def write_results(name: str, lines: list[str]) -> None:
    """Write a benchmark's report to bench/results/NAME and print it."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / name).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(percent / 100 * len(ordered)) - 1))]


def machine() -> str:
    import os

    return f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def median(values: list[float]) -> float:
    return statistics.median(values)
