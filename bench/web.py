"""Keeping a web site in sync: a 200-page site served on 127.0.0.1, crawled once, then
rebuilt after 5 pages change and 3 vanish, each build a fresh `verbatim index build`.

Reports the requests the rebuild made (conditional GETs answered 304), the texts it
embedded, and its own work against the first crawl's. Writes bench/results/web.md.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, write_results
from tests.web_server import Site, serve

VERBATIM = str(Path(sys.executable).with_name("verbatim"))
PAGES = 200
WORDS = ("harbour lighthouse keeper bridge river engineer bakery museum ferry island quay market square "
         "council library school station tram railway garden orchard festival winter summer storm flood "
         "granite timber copper salt herring wool mill tower bell chapel archive map ledger charter").split()


def paragraph(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(3, 5)):
        words = [rng.choice(WORDS) for _ in range(rng.randint(10, 18))]
        sentences.append(" ".join(words).capitalize() + f" in {rng.randint(1700, 2020)}.")
    return " ".join(sentences)


def page_paragraphs(number: int, revision: int = 0) -> list[str]:
    rng = random.Random(number * 1000 + revision)
    return [paragraph(rng) for _ in range(4)]


def build(env: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    child = subprocess.run([VERBATIM, "index", "build", "--json"], env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    site = Site()
    names = [f"/site/p{number:03d}" for number in range(PAGES)]
    site.html("/site/", "Index", ["The index of every page of this site, one link per page."], names)
    for number, name in enumerate(names):
        site.html(name, f"Page {number}", page_paragraphs(number))
    server = serve(site)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            scratch = Path(scratch)
            (scratch / "corpus").mkdir()
            env = {**os.environ, "VERBATIM_CORPUS_DIR": str(scratch / "corpus"),
                   "VERBATIM_INDEX_DIR": str(scratch / "index"), "VERBATIM_CACHE_DIR": str(scratch / "cache"),
                   "VERBATIM_WEB_DELAY_SECONDS": "0",
                   "VERBATIM_WEB_MAX_PAGES": str(PAGES + 1)}
            # Warm the ONNX export (a once-per-machine cost) with a one-file corpus, then empty the
            # embedding cache. The file stays: removing a corpus's only document is refused.
            (scratch / "corpus" / "warm.txt").write_text("A warm-up sentence.\n")
            build(env)
            (scratch / "cache" / "embeddings.sqlite").unlink()
            subprocess.run([VERBATIM, "source", "add", site.base + "/site/", "--depth", "1"], env=env, check=True,
                           capture_output=True)
            first_wall, first = build(env)
            noop_walls = []
            for _ in range(3):
                site.requests.clear()
                noop_walls.append(build(env)[0])
            noop_requests = list(site.requests)
            for number in range(5):
                site.html(names[number], f"Page {number}", page_paragraphs(number, revision=1))
            for name in names[-3:]:
                del site.pages[name]
            site.requests.clear()
            rebuild_wall, rebuild = build(env)
            started = time.perf_counter()
            subprocess.run([VERBATIM, "--help"], capture_output=True, check=True)
            startup = time.perf_counter() - started
    finally:
        site.stopped.set()
        server.shutdown()
    conditional = sum(1 for _, was_conditional, _ in site.requests if was_conditional)
    not_modified = sum(1 for _, _, status in site.requests if status == 304)
    noop = sorted(noop_walls)[1]
    own_rebuild, own_first = rebuild_wall - startup, first_wall - startup
    lines = [
        f"Measured by `make bench-web` on {machine()}, {time.strftime('%Y-%m-%d')}: a site of {PAGES} pages and an "
        f"index page on 127.0.0.1 (no delay between requests), each build a fresh `verbatim index build` process.",
        "",
        "| build | wall s | requests | conditional / 304 | texts embedded | changed / removed |",
        "|---|---|---|---|---|---|",
        f"| first crawl (empty embedding cache) | {first_wall:.1f} | — | — | {first['embedded']:,} | "
        f"{first['added']} added |",
        f"| nothing changed (median of 3) | {noop:.2f} | {len(noop_requests)} | "
        f"{sum(1 for r in noop_requests if r[1])} / {sum(1 for r in noop_requests if r[2] == 304)} | 0 | 0 / 0 |",
        f"| 5 pages changed, 3 vanished | {rebuild_wall:.2f} | {len(site.requests)} | {conditional} / {not_modified} | "
        f"{rebuild['embedded']} | {rebuild['changed']} / {rebuild['removed']} |",
        "",
        f"The rebuild's own work (wall minus process start-up, {startup:.2f} s): {own_rebuild:.2f} s against "
        f"{own_first:.1f} s for the first crawl, **{100 * own_rebuild / own_first:.1f}%**.",
    ]
    write_results("web.md", lines)


if __name__ == "__main__":
    main()
