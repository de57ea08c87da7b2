import errno
import os

import pytest

from config.settings import InvalidSetting
from index.build import build_index, check_drop
from index.errors import BuildLocked, CorpusMissing, DiskFull, WouldDropDocuments
from index.storage import store
from tests.conftest import ANSWER_ALWAYS, SHARED_CACHE, make_settings, settings_with_own_cache, write_corpus

TEXT = "Bees make honey in hives. Honey keeps for years.\n\nWasps do not make honey at all."


def test_build_indexes_documents_and_reports_skipped_files(tmp_path):
    write_corpus(tmp_path, {"bees.txt": TEXT, "notes/empty.md": "", "bad.txt": b"\xff\xfe\xfa"})
    summary = build_index(make_settings(tmp_path))
    assert (summary.documents, summary.passages, summary.sentences) == (1, 1, 3)
    assert {(s.source, s.describe()) for s in summary.skipped} == {("notes/empty.md", "empty"), ("bad.txt", "bad encoding (not valid UTF-16 at byte 2)")}
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


def test_rebuilds_embed_only_what_changed_and_report_it(tmp_path):
    write_corpus(tmp_path, {"bees.txt": TEXT, "ants.txt": "Ants farm aphids for honeydew.", "moths.txt": "Moths fly at night."})
    settings = settings_with_own_cache(tmp_path)  # an empty embedding cache
    first = build_index(settings)
    # bees: a passage and its 3 sentences; ants and moths: a passage of one sentence, whose vector
    # is embedded after the document's title, so two texts each.
    assert (first.added, first.embedded) == (3, 8)
    write_corpus(tmp_path, {"ants.txt": "Ants farm aphids for honeydew. They guard them from ladybirds.", "wasps.txt": "Wasps sting."})
    (tmp_path / "corpus" / "moths.txt").unlink()
    second = build_index(settings)
    assert (second.added, second.changed, second.removed, second.unchanged) == (1, 1, 1, 1)
    # The changed passage, its new sentence, and the new document's passage and sentence.
    assert second.embedded == 4
    full = build_index(settings, force=True)
    assert full.embedded == 9 and full.full_reason == "--full"


def test_a_new_model_or_chunking_forces_a_full_rebuild_with_a_reason(tmp_path):
    write_corpus(tmp_path, {"bees.txt": TEXT})
    build_index(make_settings(tmp_path))
    summary = build_index(make_settings(tmp_path, passage_max_chars=60))
    assert summary.full_reason == "chunking settings changed" and summary.embedded == 0  # same texts: all cached


def test_a_salted_corpus_builds_every_good_document_and_names_every_bad_one(tmp_path):
    from tests.pdfs import make_pdf

    corpus = write_corpus(tmp_path, {
        "good.txt": TEXT, "good.md": "# Ants\n\nAnts farm aphids.", "good.pdf": make_pdf([["Moths fly at night."]]),
        "binary.txt": b"\x00\x01\x02binary", "latin1.txt": "caf\xe9".encode("latin-1"), "empty.md": "",
        "broken.pdf": b"%PDF-1.4 nonsense", "huge.txt": b"a" * 3_000_000,
    })
    os.symlink(corpus / "loop.txt", corpus / "loop.txt")
    os.symlink("/etc/hostname", corpus / "outside.txt")
    summary = build_index(make_settings(tmp_path, max_file_mb=2))
    assert summary.documents == 3
    assert {s.source for s in summary.skipped} == {"binary.txt", "latin1.txt", "empty.md", "broken.pdf", "huge.txt", "loop.txt", "outside.txt"}
    assert all(s.reason for s in summary.skipped)


def test_a_corrupt_embedding_cache_is_rebuilt_not_fatal_even_for_full_builds(tmp_path, capsys):
    write_corpus(tmp_path, {"bees.txt": TEXT})
    build_index(make_settings(tmp_path))  # makes sure the session's ONNX export exists
    settings = settings_with_own_cache(tmp_path)
    cache_file = settings.cache_path / "embeddings.sqlite"
    for round_number, force in enumerate([False, True]):
        cache_file.write_bytes(b"garbage, not a database " * 100)
        write_corpus(tmp_path, {"bees.txt": TEXT + f"\n\nDrones, round {round_number}."})
        summary = build_index(settings, force=force)
        assert summary.documents == 1 and summary.embedded > 0
        assert "embedding cache" in capsys.readouterr().err
    assert len(list(settings.cache_path.glob("embeddings.sqlite.corrupt-*"))) >= 1
    # The rebuilt cache serves the next build.
    write_corpus(tmp_path, {"ants.txt": "Ants farm aphids."})
    assert build_index(settings).embedded == 2  # its passage, and its sentence after its title


FIVE = {f"doc{n}.txt": f"Document {n} is about subject {n}." for n in range(5)}


def test_an_emptied_corpus_does_not_empty_the_index_without_allow_drop(tmp_path):
    write_corpus(tmp_path, FIVE)
    settings = make_settings(tmp_path)
    live = build_index(settings).generation
    for name in FIVE:
        (tmp_path / "corpus" / name).unlink()
    with pytest.raises(WouldDropDocuments, match="5 of the 5 indexed documents.*--allow-empty"):
        build_index(settings)
    assert store.current_generation(settings.index_dir).name == live
    emptied = build_index(settings, allow_drop=True)
    assert (emptied.documents, emptied.removed) == (0, 5)


@pytest.mark.parametrize(("indexed", "removed", "refused"), [
    (5, 3, True), (5, 2, False), (4, 3, False), (1, 1, True), (2, 2, True), (10, 6, True), (10, 5, False), (0, 0, False),
])
def test_dropping_all_or_most_documents_is_refused_and_a_few_is_not(indexed, removed, refused):
    if refused:
        with pytest.raises(WouldDropDocuments):
            check_drop(indexed, removed)
    else:
        check_drop(indexed, removed)


def test_the_cli_refuses_in_one_line_and_allow_empty_overrides(tmp_path, capsys, monkeypatch):
    from bot.cli.main import main

    monkeypatch.setenv("VERBATIM_CACHE_DIR", str(SHARED_CACHE))
    write_corpus(tmp_path, FIVE)
    paths = ["--corpus", str(tmp_path / "corpus"), "--index", str(tmp_path / "index")]
    assert main(["index", "build", *paths]) == 0
    for name in FIVE:
        (tmp_path / "corpus" / name).unlink()
    capsys.readouterr()
    assert main(["index", "build", *paths]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--allow-empty" in error[0]
    assert main(["index", "build", "--force", *paths]) == 0
    assert "0 documents" in capsys.readouterr().out


def test_a_sentence_is_embedded_after_its_documents_title_and_quoted_alone(tmp_path):
    import numpy as np

    from bot.answering.answer import Answerer

    write_corpus(tmp_path, {"cars.md": "# Porsche\n\nThe main factory is in Leipzig. It builds the Macan."})
    settings = make_settings(tmp_path, **ANSWER_ALWAYS)
    build_index(settings)
    answerer = Answerer(settings)
    stored = np.load(store.current_generation(settings.index_dir) / store.SENTENCE_VECTORS).astype(np.float32)
    titled, alone = answerer.engine.embedder.embed(["Porsche: The main factory is in Leipzig.", "The main factory is in Leipzig."])
    # (int8 activations are quantized per batch, so a text embedded in another batch differs a little)
    assert np.max(stored @ titled) > 0.98 and np.max(stored @ titled) - np.max(stored @ alone) > 0.05, (np.max(stored @ titled), np.max(stored @ alone))
    quote = answerer.answer("Where is the Porsche factory?").quotes[0]
    assert quote.text.startswith("The main factory is in Leipzig.")  # the title is context, never quoted text


def test_documents_removed_on_purpose_may_empty_the_index_but_others_still_count(tmp_path):
    write_corpus(tmp_path, {"bees.txt": TEXT})
    settings = make_settings(tmp_path)
    build_index(settings)
    (tmp_path / "corpus" / "bees.txt").unlink()
    emptied = build_index(settings, allow_drop_of=("bees.txt",))  # /remove of a shelf's last document
    assert (emptied.documents, emptied.removed) == (0, 1)
    assert store.indexed_documents(store.current_generation(settings.index_dir)) == {}
    from bot.answering.answer import Answerer

    assert not Answerer(settings).answer("What do bees make?").answered
    write_corpus(tmp_path, FIVE)
    build_index(settings)
    for name in FIVE:
        (tmp_path / "corpus" / name).unlink()
    # One was removed on purpose; the other four vanishing still looks like a lost corpus.
    with pytest.raises(WouldDropDocuments, match="4 of the 4 indexed documents"):
        build_index(settings, allow_drop_of=("doc0.txt",))


def test_an_infinite_file_size_limit_is_a_setting_error_of_the_build(tmp_path):
    write_corpus(tmp_path, {"bees.txt": TEXT})
    settings = make_settings(tmp_path, max_file_mb=float("inf"))  # loads: only what sizes files refuses it
    with pytest.raises(InvalidSetting, match=r"^setting max_file_mb \(VERBATIM_MAX_FILE_MB\) is inf: give a finite"):
        build_index(settings)


def _full_copy(source, target, **_):
    # What shutil reports when the target's disk fills: the source first, the target second.
    raise OSError(errno.ENOSPC, "No space left on device", str(source), None, str(target))


def _failing(code: int, message: str):
    def fail(*_, **__):
        raise OSError(code, message)
    return fail


@pytest.mark.parametrize("fill", ["copying the ONNX export", "saving vectors"])
def test_a_disk_that_fills_during_a_build_leaves_no_build_behind_and_is_named(fill, tmp_path, capsys, monkeypatch):
    import shutil

    import numpy as np

    from bot.cli.main import main

    monkeypatch.setenv("VERBATIM_CACHE_DIR", str(SHARED_CACHE))
    write_corpus(tmp_path, {"bees.txt": TEXT})
    index = tmp_path / "index"
    paths = ["--corpus", str(tmp_path / "corpus"), "--index", str(index)]
    assert main(["index", "build", *paths]) == 0
    live = store.current_generation(index).name
    write_corpus(tmp_path, {"ants.txt": "Ants farm aphids for honeydew."})
    if fill == "copying the ONNX export":  # the cache on another disk: no hard link, a copy
        monkeypatch.setattr(os, "link", _failing(errno.EXDEV, "Invalid cross-device link"))
        monkeypatch.setattr(shutil, "copy2", _full_copy)
    else:
        monkeypatch.setattr(np, "save", _failing(errno.ENOSPC, "No space left on device"))
    capsys.readouterr()
    assert main(["index", "build", *paths]) == 2
    error = capsys.readouterr().err.splitlines()
    assert len(error) == 1 and error[0].startswith(f"verbatim: error: the disk is full at {index}: the new index")
    assert "left as it was" in error[0] and str(SHARED_CACHE) not in error[0]
    assert not list(index.glob(".building-*"))  # the half-written build does not keep the disk full
    assert store.current_generation(index).name == live
    with pytest.raises(DiskFull):
        build_index(make_settings(tmp_path))
