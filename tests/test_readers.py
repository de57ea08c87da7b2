"""One builder, many readers: reader processes answer throughout rebuilds, always from a whole generation."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from index.build import build_index
from tests.conftest import ROOT, make_settings, write_corpus

QUESTION = "What do the keepers feed the lighthouse cat?"
OTHERS = {f"doc{n}.txt": f"Document {n} is about topic {n}. It has a second sentence." for n in range(8)}

# A reader: one Answerer (as the bot or `chat` keeps), answering until told to stop, then once more.
READER = """
import json, sys
from pathlib import Path
from bot.answering.answer import Answerer
from config import load_settings
settings = load_settings(corpus_dir=sys.argv[1], index_dir=sys.argv[2])
answerer, stop, seen = Answerer(settings), Path(sys.argv[3]), []
print("ready", flush=True)
def cat_quote():
    # "" where the generation read is older than cat.txt: its quote is withheld.
    return next((q.text for q in answerer.answer(sys.argv[4]).quotes if q.source == "cat.txt"), "")
while not stop.exists():
    seen.append(cat_quote())
seen.append(cat_quote())
print(json.dumps(seen))
"""


def test_two_reader_processes_answer_throughout_rebuilds_from_whole_generations(tmp_path):
    write_corpus(tmp_path, {**OTHERS, "cat.txt": "The keepers feed the lighthouse cat food number 0."})
    settings = make_settings(tmp_path)
    build_index(settings)
    stop = tmp_path / "stop"
    env = {**os.environ, "VERBATIM_CACHE_DIR": str(settings.cache_path)}
    readers = [
        subprocess.Popen([sys.executable, "-c", READER, str(settings.corpus_dir), str(settings.index_dir), str(stop),
                          QUESTION], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for reader in readers:
        assert reader.stdout.readline().strip() == "ready"  # both are reading before the first rebuild
    versions = ["The keepers feed the lighthouse cat food number 0."]
    for number in range(1, 4):  # the one builder rebuilds while they read
        versions.append(f"The keepers feed the lighthouse cat food number {number}.")
        write_corpus(tmp_path, {"cat.txt": versions[-1]})
        build_index(settings)
    stop.touch()
    for reader in readers:
        out, err = reader.communicate(timeout=120)
        assert reader.returncode == 0, err
        assert err == ""  # no damaged or half-written index was ever seen
        seen = json.loads(out)
        assert set(seen) - {""} <= set(versions)  # every answer came from one whole generation
        assert seen[-1] == versions[-1]  # and the last rebuild was picked up without a restart
