"""Hostile files are skipped, one by one, with their reasons, while the build goes on (index/sources/sandbox.py)."""

import os
import signal

import pytest

from bot.shelves.uploads import UploadLimits, UploadRefused, save_upload
from index.build import build_index, load_corpus
from index.sources.load import TOO_MUCH_TEXT, discover
from index.sources.sandbox import OUT_OF_MEMORY, TIMED_OUT, ExtractLimits, Sandbox, read_files
from index.types import Document, Skipped
from tests import hostile
from tests.conftest import make_settings, write_corpus
from tests.documents import make_epub, make_odt
from tests.pdfs import make_pdf

GOOD = {
    "leave.txt": "Every employee gets twenty-seven days of paid leave a year.\n",
    "travel.pdf": make_pdf([["Trains are booked through the travel desk."]]),
}


def test_one_build_skips_each_hostile_file_with_its_reason_and_indexes_the_rest(tmp_path):
    write_corpus(tmp_path, {
        **GOOD,
        "repeats.epub": hostile.repeated_spine_epub(copies=50, chapter_chars=20_000),
        "shared-stream.pdf": hostile.shared_stream_pdf(pages=8, stream_bytes=100_000),
        "broken.docx": hostile.malformed_docx(),
        "broken.pptx": hostile.malformed_pptx(),
        "laughs.docx": hostile.billion_laughs_docx(),
        "nested.rst": hostile.nested_rst(1500),
        "no-geometry.pptx": hostile.pptx_shape_without_geometry("The box without geometry still holds this line."),
    })
    settings = make_settings(tmp_path, extract_max_chars=300_000, extract_max_memory_mb=250)
    summary = build_index(settings)
    reasons = {item.source: item.describe() for item in summary.skipped}
    assert set(reasons) == {"repeats.epub", "shared-stream.pdf", "broken.docx", "broken.pptx", "laughs.docx",
                            "nested.rst"}
    assert "spine lists 'text/c0.xhtml' 50 times" in reasons["repeats.epub"]
    assert reasons["shared-stream.pdf"].startswith(TOO_MUCH_TEXT) and "by page" in reasons["shared-stream.pdf"]
    assert reasons["broken.docx"].startswith("malformed Word file")
    assert reasons["broken.pptx"].startswith("malformed PowerPoint file")
    assert "amplification" in reasons["laughs.docx"]
    # Under 250 MB, docutils runs out of memory before it runs out of stack; either way it is skipped.
    assert reasons["nested.rst"].startswith((OUT_OF_MEMORY, "reStructuredText could not be parsed"))
    documents, _ = load_corpus(settings)
    texts = {document.source: document.text for document in documents}
    assert set(texts) == {"leave.txt", "travel.pdf", "no-geometry.pptx"}
    assert "The box without geometry still holds this line." in texts["no-geometry.pptx"]


def test_a_file_over_the_cpu_limit_is_stopped_and_a_fresh_worker_reads_the_next(tmp_path):
    # ~7 s of CPU for pypdf, a kernel limit of 1 s: the worker dies of SIGXCPU mid-file.
    write_corpus(tmp_path, {"slow.pdf": hostile.shared_stream_pdf(pages=1, stream_bytes=2_000_000), **GOOD})
    settings = make_settings(tmp_path, extract_timeout_seconds=1)
    files, _ = discover(settings.corpus_dir)
    reported = []
    results = read_files(files, ExtractLimits.from_settings(settings), reported.append, workers=1)
    by_source = {result.source: result for result in results}
    assert isinstance(by_source["slow.pdf"], Skipped)
    assert (by_source["slow.pdf"].reason, by_source["slow.pdf"].detail) == (TIMED_OUT, "over 1 s of CPU time")
    assert all(isinstance(by_source[name], Document) for name in GOOD)
    assert sum(reported) == sum(file.size for file in files)  # progress still adds up


def test_a_file_over_the_memory_limit_is_skipped_with_the_reason(tmp_path):
    write_corpus(tmp_path, {"nested.rst": hostile.nested_rst(1500), **GOOD})
    documents, skipped = load_corpus(make_settings(tmp_path, extract_max_memory_mb=250))
    assert [(item.source, item.reason) for item in skipped] == [("nested.rst", OUT_OF_MEMORY)]
    assert sorted(document.source for document in documents) == sorted(GOOD)


def test_a_worker_killed_while_idle_is_replaced(tmp_path):
    write_corpus(tmp_path, GOOD)
    files, _ = discover(tmp_path / "corpus")
    with Sandbox(ExtractLimits.from_settings(make_settings(tmp_path)), workers=1) as sandbox:
        assert isinstance(sandbox.read(files[:1], lambda count: None)[0], Document)
        (worker,) = sandbox._idle
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.wait()
        assert isinstance(sandbox.read(files[1:], lambda count: None)[0], Document)
        assert sandbox._idle[0] is not worker


def test_a_500_page_pdf_is_extracted_in_full_under_the_default_limits(tmp_path):
    pages = [[f"Page {number}, line {line}: the committee met and agreed on the budget for the year."
              for line in range(40)] for number in range(1, 501)]
    write_corpus(tmp_path, {"report.pdf": make_pdf(pages)})
    settings = make_settings(tmp_path)
    files, _ = discover(settings.corpus_dir)
    (document,) = read_files(files, ExtractLimits.from_settings(settings))
    assert isinstance(document, Document), document
    assert len(document.page_starts) == 500
    assert document.text.rstrip().endswith("Page 500, line 39: the committee met and agreed on the budget for the year.")


def test_an_upload_that_fails_extraction_is_refused_with_the_reason_and_not_saved(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    limits = UploadLimits.from_settings(make_settings(tmp_path))
    with pytest.raises(UploadRefused, match=r"'broken.docx' cannot be indexed: malformed Word file"):
        save_upload(corpus, "broken.docx", hostile.malformed_docx(), limits)
    with pytest.raises(UploadRefused, match=r"'repeats.epub' cannot be indexed: malformed EPUB: its spine lists"):
        save_upload(corpus, "repeats.epub", hostile.repeated_spine_epub(copies=3, chapter_chars=1_000), limits)
    assert list((corpus / "uploads").iterdir()) == []  # no draft left behind either
    saved = save_upload(corpus, "travel.pdf", GOOD["travel.pdf"], limits)
    assert saved.read_bytes() == GOOD["travel.pdf"]


def _with_mimetype(raw: bytes, mimetype: bytes) -> bytes:
    return hostile._rezip(raw, {"mimetype": lambda old: mimetype})


@pytest.mark.parametrize("name, raw", [
    ("book.epub", make_epub("Book", [("One", ["A sentence in the book."])])),
    ("notes.odt", make_odt([(0, "A sentence in the notes.")])),
])
def test_a_zipped_document_whose_mimetype_names_another_type_is_refused(tmp_path, name, raw):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    with pytest.raises(UploadRefused, match="not a document Verbatim reads"):
        save_upload(corpus, name, _with_mimetype(raw, b"application/zip"), UploadLimits(10**6, 5))
    write_corpus(tmp_path, {name: _with_mimetype(raw, b"application/zip"), "ok-" + name: raw})
    documents, skipped = load_corpus(make_settings(tmp_path))
    assert [document.source for document in documents] == ["ok-" + name]
    assert len(skipped) == 1 and "its mimetype member says 'application/zip'" in skipped[0].reason
