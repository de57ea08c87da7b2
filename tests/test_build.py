import pytest

from index import store
from index.build import build_index
from index.errors import BuildLocked, CorpusMissing
from tests.conftest import make_settings, write_corpus

TEXT = "Bees make honey in hives. Honey keeps for years.\n\nWasps do not make honey at all."


def test_build_indexes_documents_and_reports_skipped_files(tmp_path):
    write_corpus(tmp_path, {"bees.txt": TEXT, "notes/empty.md": "", "bad.txt": b"\xff\xfe\xfa"})
    summary = build_index(make_settings(tmp_path))
    assert (summary.documents, summary.passages, summary.sentences) == (1, 1, 3)
    assert {(s.source, s.reason) for s in summary.skipped} == {("notes/empty.md", "empty"), ("bad.txt", "not valid UTF-8 (byte 0)")}
    manifest = store.Manifest.read(store.current_generation(tmp_path / "index"))
    assert manifest.model == "all-MiniLM-L6-v2" and manifest.dimension == 384


def test_an_unchanged_corpus_is_not_rebuilt_but_a_change_or_new_setting_is(tmp_path):
    write_corpus(tmp_path, {"bees.txt": TEXT})
    settings = make_settings(tmp_path)
    first = build_index(settings)
    again = build_index(settings)
    assert again.up_to_date and again.generation == first.generation
    write_corpus(tmp_path, {"bees.txt": TEXT + "\n\nA new paragraph about drones."})
    changed = build_index(settings)
    assert not changed.up_to_date and changed.generation != first.generation
    rechunked = build_index(make_settings(tmp_path, passage_max_chars=60))
    assert not rechunked.up_to_date
    assert build_index(settings, force=True).generation != rechunked.generation


def test_missing_corpus_and_concurrent_builds_are_clear_errors(tmp_path):
    with pytest.raises(CorpusMissing):
        build_index(make_settings(tmp_path))
    write_corpus(tmp_path, {"bees.txt": TEXT})
    (tmp_path / "index").mkdir(exist_ok=True)
    import fcntl

    with (tmp_path / "index" / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(BuildLocked, match="another build"):
            build_index(make_settings(tmp_path))
