"""A description of the current index, for `verbatim index status`."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

from config import Settings
from index.build import load_corpus, settings_changed
from index.errors import DocumentNotIndexed, VerbatimError
from index.sources import web
from index.storage import ann, store


def index_status(settings: Settings) -> dict:
    """Generation, manifest figures, and whether the corpus has changed since the build."""
    generation, manifest = _checked_generation(settings)
    indexed = store.indexed_documents(generation)
    try:
        # Unchanged files take their text from the index, as in a build: no re-extraction.
        documents, _ = load_corpus(settings, indexed, generation)
        documents += web.stored_documents(settings)  # web pages as last fetched: status never fetches
        current = {document.source: document.sha256 for document in documents}
        unchanged = current == {source: sha for source, (sha, _) in indexed.items()}
        fresh = "up to date" if unchanged and not settings_changed(settings, manifest) else "stale"
    except VerbatimError as error:  # the corpus may be gone while the index still serves
        fresh = f"unknown ({error})"
    return {
        "index": str(generation),
        "built_at": manifest.built_at,
        "model": manifest.model,
        "faiss": manifest.faiss_type,
        "index_type": ann.kind_of(manifest.faiss_type) + (f" ({manifest.index_reason})" if manifest.index_reason else "")
        + (f"; sentence vectors as PQ codes ({manifest.sentence_codec})" if manifest.sentence_codec else ""),
        "engine": manifest.engine + (f" ({manifest.engine_note})" if manifest.engine_note else ""),
        "documents": manifest.documents,
        "passages": manifest.passages,
        "sentences": manifest.sentences,
        "corpus": str(settings.corpus_dir),
        "freshness": fresh,
    }


def show_document(settings: Settings, source: str) -> dict:
    """The stored record of one indexed document."""
    generation, _ = _checked_generation(settings)
    with closing(store.open_metadata(generation)) as connection:
        rows = store.query_metadata(
            connection, generation,
            "SELECT source, title, kind, bytes, chars, page_starts, indexed_at, text, id FROM documents WHERE source = ?",
            (source,),
        )
        row = rows[0] if rows else None
        if row is None:
            raise DocumentNotIndexed(f"{source!r} is not in the index; `verbatim index status` shows what is")
        sections = store.document_sections(connection, row[-1])
    keys = ("source", "title", "kind", "bytes", "chars", "page_starts", "indexed_at", "text")
    record = dict(zip(keys, row))
    record["page_starts"] = [int(p) for p in record["page_starts"].split(",") if p]
    # Where each heading path, chapter or slide title starts in `text` (index/sources/formats.py).
    record["sections"] = [{"start": section.start, "path": section.path} for section in sections]
    return record


def _checked_generation(settings: Settings) -> tuple[Path, store.Manifest]:
    # The metadata database is what status and show read: a damaged one must
    # be reported as such, not read (a truncated SQLite file can even look whole).
    generation = store.current_generation(settings.index_dir)
    manifest = store.Manifest.read(generation)
    store.verify(generation, manifest, names=(store.METADATA,))
    return generation, manifest
