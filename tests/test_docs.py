"""The generated docs can't drift from the results files they are generated from."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _docs_module():
    spec = importlib.util.spec_from_file_location("bench_docs", ROOT / "bench" / "docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(_docs_module().PAGES))
def test_committed_docs_match_the_results_files(name):
    expected = _docs_module().generated()[name]
    assert (ROOT / "docs" / name).read_text(encoding="utf-8") == expected, "run `make docs` and commit docs/"


def test_a_changed_results_file_changes_the_generated_page(tmp_path, monkeypatch):
    docs = _docs_module()
    results = tmp_path / "results"
    results.mkdir()
    row = {"size": "tens", "shelves": 1, "passages": 41, "answerable": 41, "answered": 0.95, "first_quote_hit": 0.85,
           "out_of_corpus": 222, "out_of_corpus_not_answered": 0.97, "out_of_corpus_not_sure": 0.01,
           "unanswerable_not_answered": None, "answerable_not_sure": 0.02, "latency_ms_p50": 30.0}
    (results / "shelves.json").write_text(json.dumps({"seconds": 5, "sizes": [row]}))
    monkeypatch.setattr(docs, "RESULTS", results)
    before = docs.shelves_page()
    (results / "shelves.json").write_text(json.dumps({"seconds": 5, "sizes": [{**row, "answered": 0.9}]}))
    assert docs.shelves_page() != before and "90.0%" in docs.shelves_page()
