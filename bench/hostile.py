"""A build over hostile files (`make bench-hostile`): each is skipped with its reason, and the build costs
little more time and memory than one over the good files alone.

Two fresh `verbatim index build` processes under the default settings, each with an empty embedding cache:
20 good files alone, then the same 20 with one of each hostile file (tests/hostile.py, at the sizes of the
adversarial review). The peak memory is the largest sum of resident memory over the build's whole process
tree (the build and its extraction workers), sampled every 20 ms; CPU seconds are the whole tree's too (less
swayed than wall time by other work on a shared machine). Writes bench/results/hostile.json.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import CACHE, machine, require_data, write_json_results

from bot.cli.evaluation import load_eval_set
from tests import hostile
from tests.documents import make_docx, make_epub, make_odt, make_pptx
from tests.pdfs import make_pdf

VERBATIM = str(Path(sys.executable).with_name("verbatim"))
TARGET_PEAK_MB = 1536
TARGET_EXTRA_SECONDS = 30
# Each hostile file, and what the build must do with it: skip it with a reason that starts so, or index it.
HOSTILE = {
    "repeats.epub": (lambda: hostile.repeated_spine_epub(copies=3000, chapter_chars=1_000_000), "malformed EPUB"),
    "shared-stream.pdf": (lambda: hostile.shared_stream_pdf(pages=8, stream_bytes=2_000_000), "too much text"),
    "broken.docx": (hostile.malformed_docx, "malformed Word file"),
    "laughs.docx": (hostile.billion_laughs_docx, "malformed Word file"),
    "broken.pptx": (hostile.malformed_pptx, "malformed PowerPoint file"),
    "nested.rst": (lambda: hostile.nested_rst(1500), "reStructuredText could not be parsed"),
    # Broke every build before; a valid deck whose text is now read.
    "no-geometry.pptx": (lambda: hostile.pptx_shape_without_geometry("A text box with no preset geometry."), None),
}


def write_good(directory: Path) -> None:
    """20 good files of every kind from SQuAD paragraphs: 12 .txt, 2 .pdf, 2 .docx, and one .pptx, .epub, .odt, .md."""
    (qa_path,) = require_data("squad2-dev-a.json")
    paragraphs = [p.strip() for text in load_eval_set(qa_path).articles.values() for p in text.split("\n\n") if p.strip()]
    directory.mkdir(parents=True, exist_ok=True)
    chunks = [paragraphs[3 * i : 3 * i + 3] for i in range(20)]
    for i in range(12):
        (directory / f"good{i:02d}.txt").write_text("\n\n".join(chunks[i]) + "\n", encoding="utf-8")
    makers = {
        "good12.pdf": lambda c: make_pdf([[s for s in p.split(". ")] for p in c]),
        "good13.pdf": lambda c: make_pdf([[s for s in p.split(". ")] for p in c]),
        "good14.docx": lambda c: make_docx([(1, "Notes")] + [(0, p) for p in c]),
        "good15.docx": lambda c: make_docx([(0, p) for p in c]),
        "good16.pptx": lambda c: make_pptx([(f"Slide {n}", [p]) for n, p in enumerate(c, 1)]),
        "good17.epub": lambda c: make_epub("Book", [(f"Chapter {n}", [p]) for n, p in enumerate(c, 1)]),
        "good18.odt": lambda c: make_odt([(0, p) for p in c]),
        "good19.md": lambda c: ("# Notes\n\n" + "\n\n".join(c) + "\n").encode(),
    }
    for i, (name, make) in enumerate(makers.items(), start=12):
        (directory / name).write_bytes(make(chunks[i]))


def tree_rss_mb(root: int) -> float:
    """Resident memory of `root` and all its descendants, in MB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as status:
                total += next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
        except OSError:
            continue
    return total / 1024


def build(corpus: Path, scratch: Path, name: str) -> dict:
    """One fresh `verbatim index build` of `corpus` (empty embedding cache): wall and CPU seconds, peak tree MB, summary."""
    env = {**os.environ, "VERBATIM_CORPUS_DIR": str(corpus), "VERBATIM_INDEX_DIR": str(scratch / f"index-{name}"),
           "VERBATIM_CACHE_DIR": str(CACHE), "VERBATIM_EMBEDDING_CACHE": str(scratch / f"embeddings-{name}.sqlite")}
    started, cpu_before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    child = subprocess.Popen([VERBATIM, "index", "build", "--json"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    peak = [0.0]

    def sample() -> None:
        while child.poll() is None:
            peak[0] = max(peak[0], tree_rss_mb(child.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = child.communicate()
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the build, and the workers it waited for
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"the build over {name} failed (exit {child.returncode}): {err.strip()[-2000:]}")
    return {"wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2), "peak_tree_mb": round(peak[0]),
            "load_average": round(os.getloadavg()[0], 1), "summary": json.loads(out.strip().splitlines()[-1])}


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        write_good(scratch / "good")
        write_good(scratch / "mixed")
        sizes = {}
        for name, (make, _) in HOSTILE.items():
            data = make()
            (scratch / "mixed" / name).write_bytes(data)
            sizes[name] = len(data)
        build(scratch / "good", scratch, "warm-up")  # the ONNX export, once per machine
        good = build(scratch / "good", scratch, "good")
        mixed = build(scratch / "mixed", scratch, "mixed")
    skipped = {item["source"]: item for item in mixed["summary"]["skipped"]}
    outcomes, as_expected = {}, True
    for name, (_, expected) in HOSTILE.items():
        item = skipped.get(name)
        reason = f"{item['reason']} ({item['detail']})" if item and item["detail"] else (item or {}).get("reason")
        outcomes[name] = {"bytes": sizes[name], "skipped": reason, "expected": expected or "indexed"}
        as_expected &= (reason or "").startswith(expected) if expected else item is None
    extra = mixed["wall_seconds"] - good["wall_seconds"]
    report = {
        "machine": machine(), "date": time.strftime("%Y-%m-%d"),
        "settings": "defaults (extract_timeout_seconds, extract_max_memory_mb, extract_max_chars)",
        "good_files": {"documents": good["summary"]["documents"], "wall_seconds": good["wall_seconds"],
                       "cpu_seconds": good["cpu_seconds"], "peak_tree_mb": good["peak_tree_mb"],
                       "load_average_after": good["load_average"]},
        "good_and_hostile": {"documents": mixed["summary"]["documents"], "skipped": len(skipped),
                             "wall_seconds": mixed["wall_seconds"], "cpu_seconds": mixed["cpu_seconds"],
                             "peak_tree_mb": mixed["peak_tree_mb"], "load_average_after": mixed["load_average"]},
        "hostile": outcomes,
        "extra_seconds": round(extra, 2),
        "extra_cpu_seconds": round(mixed["cpu_seconds"] - good["cpu_seconds"], 2),
        "targets": {"peak_tree_mb_at_most": TARGET_PEAK_MB, "extra_seconds_at_most": TARGET_EXTRA_SECONDS},
        "met": as_expected and set(skipped) == {n for n, (_, e) in HOSTILE.items() if e}
        and mixed["peak_tree_mb"] <= TARGET_PEAK_MB and extra <= TARGET_EXTRA_SECONDS,
    }
    write_json_results("hostile.json", report)


if __name__ == "__main__":
    main()
