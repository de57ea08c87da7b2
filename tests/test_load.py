import os

import pytest

from index.errors import CorpusMissing
from index.load import Unreadable, discover, read_document
from tests.conftest import write_corpus


def test_discover_finds_supported_files_recursively_with_relative_names(tmp_path):
    corpus = write_corpus(tmp_path, {"a.txt": "A.", "sub/b.md": "B.", "c.csv": "x", ".hidden/d.txt": "D."})
    files, skipped = discover(corpus)
    assert [f.source for f in files] == ["a.txt", "sub/b.md"]
    assert skipped == []


def test_missing_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusMissing, match="corpus directory not found"):
        discover(tmp_path / "nope")


def test_symlinks_outside_the_corpus_are_skipped_and_loops_do_not_hang(tmp_path):
    corpus = write_corpus(tmp_path, {"a.txt": "A."})
    (tmp_path / "outside.txt").write_text("secret")
    os.symlink(tmp_path / "outside.txt", corpus / "link.txt")
    os.symlink(corpus, corpus / "loopdir")
    os.symlink(corpus / "self.txt", corpus / "self.txt")
    files, skipped = discover(corpus)
    assert [s.source for s in skipped] == ["link.txt"]
    assert "self.txt" in [f.source for f in files]
    with pytest.raises(Unreadable):
        read_document(next(f for f in files if f.source == "self.txt"), 10**6)


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty"), (b"  \n\t", "empty"), (b"\xff\xfe bad", "not valid UTF-8"), (b"ab\x00cd", "binary"), (b"x" * 2000, "larger")],
)
def test_unusable_files_raise_with_the_reason(tmp_path, content, reason):
    corpus = write_corpus(tmp_path, {"bad.txt": content})
    (file,) = discover(corpus)[0]
    with pytest.raises(Unreadable, match=reason):
        read_document(file, max_bytes=1000)


def test_read_document_keeps_text_exact_but_drops_a_byte_order_mark(tmp_path):
    corpus = write_corpus(tmp_path, {"a.md": "\ufeff# Title\r\n\r\nBody.\r\n".encode()})
    (file,) = discover(corpus)[0]
    document = read_document(file, 10**6)
    assert document.text == "# Title\r\n\r\nBody.\r\n"
    assert document.kind == "md" and len(document.sha256) == 64


def test_html_main_text_is_extracted_without_navigation_or_scripts(tmp_path):
    html = """<html><head><title>Bee Facts</title><style>.x{color:red}</style><script>var tracking = 1;</script></head>
    <body><nav><a href="/">Home</a> | <a href="/about">About us</a></nav>
    <article><h1>Bee Facts</h1><p>Honey bees live in colonies with a single queen that lays all the eggs.</p>
    <p>Worker bees gather nectar from flowers and turn it into honey inside the hive.</p></article>
    <footer>Copyright 2024 Example Corp. All rights reserved.</footer></body></html>"""
    corpus = write_corpus(tmp_path, {"bees.html": html})
    (file,) = discover(corpus)[0]
    document = read_document(file, 10**6)
    assert document.kind == "html" and document.title == "Bee Facts"
    assert "single queen" in document.text and "nectar from flowers" in document.text
    assert "tracking" not in document.text and "color:red" not in document.text and "About us" not in document.text


def test_pdf_text_is_extracted_per_page(tmp_path):
    from tests.pdfs import make_pdf

    corpus = write_corpus(tmp_path, {"report.pdf": make_pdf([["First page line one.", "Line two."], ["Second page here."]])})
    (file,) = discover(corpus)[0]
    document = read_document(file, 10**6)
    assert document.kind == "pdf" and len(document.page_starts) == 2
    second = document.text[document.page_starts[1] :]
    assert "Second page here." in second and "First page" not in second
    assert "First page line one." in document.text[: document.page_starts[1]]


def test_a_malformed_pdf_is_unreadable_with_the_reason(tmp_path):
    corpus = write_corpus(tmp_path, {"broken.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage"})
    (file,) = discover(corpus)[0]
    with pytest.raises(Unreadable, match="PDF"):
        read_document(file, 10**6)
