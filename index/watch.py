"""`verbatim index watch`: rebuild incrementally once changes to the corpus settle."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from config import Settings
from index.build import BuildSummary, Progress, build_index
from index.errors import BuildLocked, WouldDropDocuments
from index.notice import warn

# How long the watcher waits for changes before waking with none (ms): only the
# first wait, before the first build, is worth keeping short.
_WAKE_MS = 200


def watch(
    settings: Settings, progress: Progress | None = None, stop_event=None,
    on_refused: Callable[[WouldDropDocuments], None] | None = None,
) -> Iterator[BuildSummary]:
    """Build now, then again after each settled batch of changes; yields each summary.

    It never publishes an index that drops most documents (no `allow_drop`):
    such a build is handed to `on_refused` (default: a warning) and the watch goes on.
    """
    from watchfiles import watch as watch_files

    batches = watch_files(
        settings.corpus_dir, watch_filter=corpus_change_filter(settings), debounce=settings.watch_debounce_ms,
        step=200, stop_event=stop_event, raise_interrupt=True, rust_timeout=_WAKE_MS, yield_on_timeout=True,
    )
    # Watching starts before the first build, so a change made during it (or
    # just after) is caught rather than lost until the next one.
    next(batches, None)
    yield build_index(settings, progress)
    for changes in batches:
        if not changes:
            continue  # a periodic wake-up with nothing to do
        try:
            yield build_index(settings, progress)
        except BuildLocked:
            continue  # another build (the CLI, /reindex) is on it; the next change retries
        except WouldDropDocuments as refusal:
            (on_refused or _warn_refused)(refusal)


def _warn_refused(refusal: WouldDropDocuments) -> None:
    warn(str(refusal))


def corpus_change_filter(settings: Settings) -> Callable[[object, str], bool]:
    """watchfiles' filter: the usual ignores, plus everything Verbatim itself writes.

    The index, its cache and the feedback database may live inside the corpus
    (a data_dir or index_dir inside it, or an index built there under var/index); their writes
    (the build lock, new generations, the embedding cache) must not count as
    changes, or every build would trigger the next one.
    """
    from watchfiles import DefaultFilter

    usual = DefaultFilter()
    own_directories = tuple(_absolute(path) for path in (settings.index_dir, settings.cache_path))
    feedback = str(_absolute(settings.feedback_db))

    def accept(change, path: str) -> bool:
        absolute = _absolute(Path(path))
        if any(absolute == own or own in absolute.parents for own in own_directories):
            return False
        if str(absolute).startswith(feedback):  # the database and its -wal / -journal files
            return False
        return usual(change, path)

    return accept


def _absolute(path: Path) -> Path:
    # Resolved once per path: watchfiles reports real paths, settings may hold
    # relative ones or go through a symlink.
    return Path(path).resolve()
