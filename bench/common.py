"""Shared helpers for the benchmarks: where the data is, timing, percentiles."""

from __future__ import annotations

import hashlib
import json
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"
# The project's own cache (ONNX export, embeddings), wherever a benchmark runs from:
# the default cache_dir (var/cache) of a verbatim run from the repository root.
CACHE = ROOT / "var" / "cache"


def bucket(title: str) -> int:
    """A fixed half of a slice's articles, by a hash of the title: 0 on the fitting side, 1 on the measuring side."""
    return hashlib.sha256(title.encode("utf-8")).digest()[0] % 2


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
        print(f"skipped: shared data not found ({', '.join(missing)})", file=sys.stderr)
        sys.exit(0)
    return paths


def write_results(name: str, lines: list[str]) -> None:
    """Write a benchmark's report to bench/results/NAME and print it."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / name).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def write_json_results(name: str, report: dict) -> None:
    """Write a benchmark's report as JSON to bench/results/NAME and print it."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / name).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


@contextmanager
def held_out_index(eval_set, held_out: set[str], prefix: str, **overrides) -> Iterator:
    """Settings of a fresh index of `eval_set`'s articles less `held_out`, in a scratch directory
    removed afterwards (the project's embedding cache makes rebuilds cheap)."""
    from bot.cli.evaluation import write_eval_corpus
    from config import load_settings
    from index.build import SilentProgress, build_index

    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        corpus = Path(scratch) / "corpus"
        write_eval_corpus(corpus, eval_set, (), held_out)
        settings = load_settings(corpus_dir=corpus, index_dir=Path(scratch) / "index", cache_dir=CACHE, **overrides)
        build_index(settings, SilentProgress(), force=True)
        yield settings


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
