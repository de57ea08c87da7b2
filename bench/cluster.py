"""Build throughput on Ray with 1 and 2 local workers against a local build, and a scaling model.

Each build is a full build of the 1,000-document corpus with an empty embedding
cache (the ONNX export is warmed first), in this process: locally (onnxruntime
on every core), then on a local Ray instance of 1 and of 2 CPUs. From the
measured per-worker embedding rate and the driver's serial share, the time to
build N passages on M machines is projected (Amdahl: serial + parallel / workers).
Writes bench/results/cluster.json.  Usage: make bench-cluster
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from common import CACHE, machine, write_results
from corpus1000 import write_1000

from config import load_settings
from index.build import build_index

CORES_PER_MACHINE = 16  # a typical build node, for the projection


class StageTimer:
    """A build progress that records how long each stage (reading, chunking, embedding) took;
    what follows the last embedded batch (writing and publishing) is "writing"."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stage, self._started, self._last = "", 0.0, 0.0

    def start(self, label: str, total: int) -> None:
        self._close()
        self._stage, self._started = label, time.perf_counter()
        self._last = self._started

    def advance(self, count: int) -> None:
        self._last = time.perf_counter()

    def _close(self) -> None:
        if self._stage:
            self.seconds[self._stage] = self.seconds.get(self._stage, 0.0) + time.perf_counter() - self._started

    def finish(self) -> dict[str, float]:
        now = time.perf_counter()
        if self._stage == "embedding":
            self.seconds["embedding"] = self._last - self._started
            self.seconds["writing"] = now - self._last
        else:
            self._close()
        self._stage = ""
        return self.seconds


def timed_build(scratch: Path, name: str, **overrides) -> dict:
    settings = load_settings(corpus_dir=scratch / "corpus", index_dir=scratch / name, cache_dir=CACHE,
                             embedding_cache=scratch / f"{name}.sqlite", **overrides)
    timer = StageTimer()
    started = time.perf_counter()
    summary = build_index(settings, timer)
    seconds = time.perf_counter() - started
    stages = timer.finish()
    parallel = stages.get("reading", 0.0) + stages.get("embedding", 0.0)
    return {"passages": summary.passages, "sentences": summary.sentences, "texts_embedded": summary.embedded,
            "seconds": seconds, "stages_s": stages, "serial_s": seconds - parallel,
            "passages_per_s": summary.passages / seconds, "texts_per_s": summary.embedded / seconds}


def main() -> None:
    # Read by Ray when it is imported: no usage reports, a private token (none written to ~/.ray).
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_AUTH_TOKEN", os.urandom(16).hex())
    import ray

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        write_1000(scratch / "corpus")
        timed_build(scratch, "warm")  # the ONNX export, once per machine
        runs = {"local (onnxruntime, every core)": timed_build(scratch, "local")}
        for workers in (1, 2):
            started = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False,
                     _temp_dir=str(scratch / "ray"), _node_ip_address="127.0.0.1")
            start_s = time.perf_counter() - started
            run = timed_build(scratch, f"ray{workers}", build_cluster="auto")
            ray.shutdown()
            runs[f"ray, {workers} worker{'s' * (workers > 1)}"] = {**run, "ray_start_s": start_s}
    one, two = runs["ray, 1 worker"], runs["ray, 2 workers"]
    per_worker_rate = one["texts_embedded"] / one["stages_s"]["embedding"]  # texts/s of one worker, embedding only
    speedup = (one["seconds"] - one["serial_s"]) / (two["seconds"] - two["serial_s"])
    efficiency = speedup / 2
    texts_per_passage = one["texts_embedded"] / one["passages"]
    serial_per_passage = one["serial_s"] / one["passages"]

    def projected_hours(passages: int, machines: int) -> float:
        workers = machines * CORES_PER_MACHINE
        parallel = passages * texts_per_passage / (per_worker_rate * workers * min(1.0, efficiency))
        return (passages * serial_per_passage + parallel) / 3600

    result = {
        "measured": f"`make bench-cluster` on {machine()}, {time.strftime('%Y-%m-%d')}",
        "corpus": "1,000 documents from SQuAD paragraphs (bench/corpus1000.py), full builds, empty embedding cache",
        "runs": runs,
        "model": {
            "per_worker_texts_per_s": per_worker_rate,
            "two_worker_speedup_of_parallel_part": speedup,
            "parallel_efficiency": efficiency,
            "texts_embedded_per_passage": texts_per_passage,
            "driver_serial_s_per_passage": serial_per_passage,
            "formula": "hours(P, M) = P * serial_per_passage + P * texts_per_passage / "
                       f"(per_worker_rate * M * {CORES_PER_MACHINE} cores * efficiency)",
            "projected_hours_10M_passages": {f"{m} machines x {CORES_PER_MACHINE} cores": projected_hours(10_000_000, m)
                                             for m in (1, 4, 16, 64)},
        },
    }
    write_results("cluster.json", [json.dumps(result, indent=2)])


if __name__ == "__main__":
    main()
