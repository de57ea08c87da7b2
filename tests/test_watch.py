import queue
import threading

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
