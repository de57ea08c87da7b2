"""The generated docs can't drift from the results files and settings they are generated from."""

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench_module(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _docs_module():
    return _bench_module("docs")


GENERATORS = [f"page:{name}" for name in sorted(_docs_module().PAGES)] + [f"readme:{name}" for name in sorted(_docs_module().BLOCKS)]


def _generate(docs, generator: str) -> str:
    kind, name = generator.split(":")
    return docs.PAGES[name]() if kind == "page" else docs.BLOCKS[name]()


def _changed(value):
    """Every number in a results file moved and every flag flipped, so any figure shown from it moves too."""
    if isinstance(value, dict):
        return {key: _changed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_changed(item) for item in value]
    if isinstance(value, bool):
        return not value
    if not isinstance(value, int | float):
        return value
    return value + 7 if isinstance(value, int) else value * 1.37 + 0.0173


@pytest.mark.parametrize("name", sorted(_docs_module().PAGES))
def test_committed_docs_match_the_results_files(name):
    expected = _docs_module().generated()[name]
    assert (ROOT / "docs" / name).read_text(encoding="utf-8") == expected, "run `make docs` and commit docs/"


@pytest.mark.parametrize("name", sorted(_docs_module().BLOCKS))
def test_the_generated_blocks_match_the_results_files(name):
    docs = _docs_module()
    found = {path: docs.readme_blocks(path.read_text(encoding="utf-8")) for path in docs.BLOCK_FILES}
    holders = [path for path, blocks in found.items() if name in blocks]
    assert holders, f"no file in BLOCK_FILES has a <!-- begin generated: {name} --> block"
    for path in holders:
        assert found[path][name] == docs.BLOCKS[name]() + "\n", f"run `make docs` and commit {path.name}"


@pytest.mark.parametrize("generator", GENERATORS)
def test_each_results_file_read_moves_what_is_generated(generator, tmp_path, monkeypatch):
    docs = _docs_module()
    results = tmp_path / "results"
    shutil.copytree(ROOT / "bench" / "results", results)
    monkeypatch.setattr(docs, "RESULTS", results)
    docs.read_files.clear()
    before = _generate(docs, generator)
    present = sorted(name for name in docs.read_files if (results / name).is_file())
    for name in present:
        path = results / name
        original = path.read_text(encoding="utf-8")
        if name.endswith(".json"):
            path.write_text(json.dumps(_changed(json.loads(original))), encoding="utf-8")
        else:
            path.write_text(original + "\n\nA line the benchmark added.\n", encoding="utf-8")
        assert _generate(docs, generator) != before, f"{generator} does not follow bench/results/{name}"
        path.write_text(original, encoding="utf-8")
    if generator not in ("page:settings.md", "readme:fresh-clone", "page:shelves.md"):
        assert present, f"{generator} reads no results file"


def test_the_settings_reference_follows_the_settings(tmp_path, monkeypatch):
    docs = _docs_module()
    from config import settings

    page = docs.settings_page()
    for name, field in settings.Settings.model_fields.items():
        assert field.description, f"setting {name} has no description= in config/settings.py"
        assert f"| `{name}` |" in page
    defaults = tmp_path / "defaults.toml"
    defaults.write_text(settings.DEFAULTS_FILE.read_text(encoding="utf-8").replace("top_quotes = 3", "top_quotes = 4"))
    monkeypatch.setattr(settings, "DEFAULTS_FILE", defaults)
    assert "| `top_quotes` | `4` |" in docs.settings_page()


def test_the_fresh_clone_figures_say_when_they_were_not_measured(tmp_path, monkeypatch):
    docs = _docs_module()
    monkeypatch.setattr(docs, "RESULTS", tmp_path)
    assert "not measured yet" in docs.fresh_clone_block()
    (tmp_path / "fresh-clone.json").write_text(json.dumps(
        {"measured": "2026-12-06", "commit": "abc", "machine": "2 cores", "make_ask_s": 186.2, "make_test_s": 392.0}))
    assert "took 3 min 6 s and `make test` 6 min 32 s" in docs.fresh_clone_block()


def test_rewriting_the_readme_touches_only_its_blocks():
    docs = _docs_module()
    text = "# Title\n\nprose\n<!-- begin generated: fresh-clone -->\nstale\n<!-- end generated -->\nmore prose\n"
    rewritten = docs.rewrite_readme(text)
    assert rewritten.startswith("# Title\n\nprose\n<!-- begin generated: fresh-clone -->\n")
    assert rewritten.endswith("\n<!-- end generated -->\nmore prose\n") and "stale" not in rewritten
    with pytest.raises(SystemExit, match="no generator for block 'nonsense'"):
        docs.rewrite_readme("<!-- begin generated: nonsense -->\n<!-- end generated -->\n")


def _git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_fresh_clone_times_the_committed_tree_without_this_environments_settings(tmp_path, monkeypatch):
    fresh_clone = _bench_module("fresh_clone")
    repo = tmp_path / "repo"
    repo.mkdir()
    # A target fails if the clone holds uncommitted files, inherits a VERBATIM_ setting or shares the user data dir.
    (repo / "Makefile").write_text(
        "ask:\n\ttest ! -e uncommitted.txt\n\ttest -z \"$$VERBATIM_CORPUS_DIR\"\n\ttest -d \"$$XDG_DATA_HOME\" || mkdir \"$$XDG_DATA_HOME\"\n"
        "test:\n\ttest -d \"$$XDG_DATA_HOME\"\n")
    _git("init", "--quiet", cwd=repo)
    _git("add", "Makefile", cwd=repo)
    _git("commit", "--quiet", "-m", "tiny", cwd=repo)
    (repo / "uncommitted.txt").write_text("not in the clone")
    monkeypatch.setenv("VERBATIM_CORPUS_DIR", "/somewhere")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "users-data"))
    work = tmp_path / "work"
    work.mkdir()
    result = fresh_clone.measure(repo, work)
    assert set(result) == {"measured", "commit", "machine", "make_ask_s", "make_test_s"}
    assert len(result["commit"]) == 40 and result["make_ask_s"] >= 0
    assert (work / "data").is_dir() and not (tmp_path / "users-data").exists()


def test_fresh_clone_reports_a_failing_target(tmp_path):
    fresh_clone = _bench_module("fresh_clone")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Makefile").write_text("ask:\n\ttrue\ntest:\n\tfalse\n")
    _git("init", "--quiet", cwd=repo)
    _git("add", "Makefile", cwd=repo)
    _git("commit", "--quiet", "-m", "tiny", cwd=repo)
    (tmp_path / "work").mkdir()
    with pytest.raises(fresh_clone.TargetFailed, match="`make test` exited 2"):
        fresh_clone.measure(repo, tmp_path / "work")
