"""A description of the current index, for `verbatim index status`."""

from __future__ import annotations

from config import Settings
from index import store
from index.build import load_corpus, settings_changed
from index.errors import VerbatimError


def index_status(settings: Settings) -> dict:
    """Generation, manifest figures, and whether the corpus has changed since the build."""
    generation = store.current_generation(settings.index_dir)
    manifest = store.Manifest.read(generation)
    with store.open_metadata(generation) as connection:
        indexed = dict(connection.execute("SELECT source, sha256 FROM documents"))
    try:
        documents, skipped = load_corpus(settings)
        current = {document.source: document.sha256 for document in documents}
        fresh = "up to date" if current == indexed and not settings_changed(settings, manifest) else "stale"
    except VerbatimError as error:  # the corpus may be gone while the index still serves
        fresh = f"unknown ({error})"
    return {
        "index": str(generation),
        "built_at": manifest.built_at,
        "model": manifest.model,
        "engine": manifest.engine + (f" ({manifest.engine_note})" if manifest.engine_note else ""),
        "documents": manifest.documents,
        "passages": manifest.passages,
        "sentences": manifest.sentences,
        "corpus": str(settings.corpus_dir),
        "freshness": fresh,
    }
