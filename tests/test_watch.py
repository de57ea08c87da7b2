import queue
import threading

from index.errors import WouldDropDocuments
from index.watch import watch
from tests.conftest import make_settings, write_corpus


def test_watch_builds_now_and_again_after_a_change(tmp_path):
    write_corpus(tmp_path, {"a.txt": "Alpha document about apples."})
    settings = make_settings(tmp_path, watch_debounce_ms=100)
    summaries: queue.Queue = queue.Queue()
    stop = threading.Event()
    worker = threading.Thread(target=lambda: [summaries.put(s) for s in watch(settings, stop_event=stop)], daemon=True)
    worker.start()
    first = summaries.get(timeout=60)
    assert first.added == 1
    write_corpus(tmp_path, {"b.txt": "Beta document about bananas."})
    second = summaries.get(timeout=60)
    assert (second.added, second.unchanged) == (1, 1)
    stop.set()
    worker.join(timeout=10)
    assert not worker.is_alive()


def test_watch_never_publishes_an_emptied_corpus_and_keeps_watching(tmp_path):
    files = {f"doc{n}.txt": f"Document {n} is about subject {n}." for n in range(5)}
    write_corpus(tmp_path, files)
    settings = make_settings(tmp_path, watch_debounce_ms=100)
    reports: queue.Queue = queue.Queue()  # summaries and refusals, in order
    stop = threading.Event()
    worker = threading.Thread(
        target=lambda: [reports.put(s) for s in watch(settings, stop_event=stop, on_refused=reports.put)], daemon=True,
    )
    worker.start()
    assert reports.get(timeout=60).added == 5
    for name in files:  # as an unmounted corpus looks
        (tmp_path / "corpus" / name).unlink()
    refusal = reports.get(timeout=60)
    assert isinstance(refusal, WouldDropDocuments) and "5 of the 5 indexed documents" in str(refusal)
    # The watch goes on, and the next change builds on the 5 documents still indexed.
    write_corpus(tmp_path, {**files, "doc5.txt": "Document 5 is new."})
    summary = reports.get(timeout=60)
    stop.set()
    worker.join(timeout=10)
    assert (summary.added, summary.unchanged, summary.removed) == (1, 5, 0)


def test_the_watch_filter_ignores_verbatims_own_writes_inside_the_corpus(tmp_path, monkeypatch):
    from watchfiles import Change

    from config import load_settings
    from index.watch import corpus_change_filter

    corpus = write_corpus(tmp_path, {"notes.txt": "Notes."})
    # The default settings with data_dir inside the corpus: var/index, its cache and the feedback database under it.
    monkeypatch.chdir(corpus)
    monkeypatch.setenv("VERBATIM_DATA_DIR", "var")
    settings = load_settings(corpus_dir=".")
    accept = corpus_change_filter(settings)
    index = str(settings.index_dir)  # var/index/<corpus>-<hash>
    own = [f"{index}/build.lock", f"{index}/CURRENT", f"{index}/.CURRENT.1a2b.tmp",
           f"{index}/gen-20261125T000000.000000000-abcd/meta.sqlite", f"{index}/.building-0123/passages.faiss",
           "var/cache/embeddings.sqlite-wal", "var/cache/onnx-0123/model.onnx",
           "var/feedback.sqlite", "var/feedback.sqlite-journal"]
    for name in own:  # watchfiles reports absolute paths
        assert not accept(Change.modified, str(corpus / name)), name
    for name in ["notes.txt", "var/handbook.md", "var/indexes.txt", "guide/index/intro.md"]:
        assert accept(Change.added, str(corpus / name)), name
    assert not accept(Change.modified, str(corpus / ".git" / "index"))  # watchfiles' usual ignores still apply
