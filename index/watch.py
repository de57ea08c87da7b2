"""`verbatim index watch`: rebuild incrementally once changes to the corpus settle."""

from __future__ import annotations

from collections.abc import Iterator

from config import Settings
from index.build import BuildSummary, Progress, build_index
from index.errors import BuildLocked


def watch(settings: Settings, progress: Progress | None = None, stop_event=None) -> Iterator[BuildSummary]:
    """Build now, then again after each settled batch of changes; yields each summary."""
    from watchfiles import watch as watch_files

    yield build_index(settings, progress)
    for _changes in watch_files(
        settings.corpus_dir, debounce=settings.watch_debounce_ms, step=200, stop_event=stop_event,
        raise_interrupt=True,
    ):
        try:
            yield build_index(settings, progress)
        except BuildLocked:
            continue  # another build (the CLI, /reindex) is on it; the next change retries
