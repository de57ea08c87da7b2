import os
import signal

import pytest

from index.errors import CorpusMissing, Unreadable
from index.passages.chunk import chunk
from index.sources.load import (
    BINARY, ENCRYPTED, HIDDEN, NO_MAIN_TEXT, NOT_REGULAR, OUTSIDE, UNSUPPORTED, CorpusFile, discover,
    printable_name, read_document, summarise_skips,
)
from index.types import Skipped
from tests.conftest import make_settings, write_corpus
from tests.pdfs import encrypt_pdf, make_pdf


def read_one(tmp_path, name: str, content: str | bytes):
    corpus = write_corpus(tmp_path, {name: content})
    return read_document(CorpusFile(corpus / name, name), 10**7)


@pytest.fixture
def alarm():
    """Fail, instead of hanging the suite, if a read blocks (a FIFO with no writer blocks forever)."""
    def timeout(signum, frame):
        raise TimeoutError("the read blocked")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_discover_finds_supported_files_recursively_with_relative_names(tmp_path):
    corpus = write_corpus(tmp_path, {"a.txt": "A.", "sub/b.md": "B.", "c.csv": "x", ".hidden/d.txt": "D.", ".e.txt": "E."})
    files, skipped = discover(corpus)
    assert [f.source for f in files] == ["a.txt", "sub/b.md"]
    assert skipped == [Skipped(".e.txt", HIDDEN), Skipped(".hidden/", HIDDEN), Skipped("c.csv", UNSUPPORTED)]


def test_a_fifo_or_a_link_to_one_is_skipped_and_never_opened_for_a_blocking_read(tmp_path, alarm):
    corpus = write_corpus(tmp_path, {"a.txt": "A."})
    os.mkfifo(corpus / "pipe.txt")
    os.symlink(corpus / "pipe.txt", corpus / "link-to-pipe.md")
    files, skipped = discover(corpus)
    assert [f.source for f in files] == ["a.txt"]
    assert skipped == [Skipped("link-to-pipe.md", NOT_REGULAR, "a FIFO"), Skipped("pipe.txt", NOT_REGULAR, "a FIFO")]
    # Even when the FIFO appears after discovery, reading it neither blocks nor reads.
    with pytest.raises(Unreadable, match="not a regular file"):
        read_document(CorpusFile(corpus / "link-to-pipe.md", "link-to-pipe.md"), 10**6)


def test_the_build_skips_a_fifo_and_loads_the_rest(tmp_path, alarm):
    from index.build import load_corpus

    corpus = write_corpus(tmp_path, {"a.txt": "Alpha text."})
    os.mkfifo(tmp_path / "pipe")
    os.symlink(tmp_path / "pipe", corpus / "z.txt")  # outside the corpus too, but a FIFO inside is no better
    os.mkfifo(corpus / "inside-pipe.txt")
    documents, skipped = load_corpus(make_settings(tmp_path))
    assert [d.source for d in documents] == ["a.txt"]
    assert {s.source: s.reason for s in skipped} == {"inside-pipe.txt": NOT_REGULAR, "z.txt": OUTSIDE}


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
    assert [s.source for s in skipped if s.reason == OUTSIDE] == ["link.txt"]
    assert "loopdir/" in [s.source for s in skipped]
    assert "self.txt" in [f.source for f in files]
    with pytest.raises(Unreadable):
        read_document(next(f for f in files if f.source == "self.txt"), 10**6)


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty"), (b"  \n\t", "empty"), (b"ok \xff bad", "bad encoding .not valid UTF-8 at byte 3"),
     (b"ab\x00cd", "binary"), (b"x" * 2000, "too large"),
     (b"\xfe\xff\xd8\x00", "bad encoding .not valid UTF-16"),  # a lone surrogate after a UTF-16 BOM
     (b"\xef\xbb\xbfa\x00b", "binary")],
)
def test_unusable_files_raise_with_the_reason(tmp_path, content, reason):
    corpus = write_corpus(tmp_path, {"bad.txt": content})
    (file,) = discover(corpus)[0]
    with pytest.raises(Unreadable, match=reason):
        read_document(file, max_bytes=1000)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le"])
def test_nul_bytes_anywhere_make_a_file_binary_but_utf16_and_utf32_with_a_bom_are_text(tmp_path, encoding):
    with pytest.raises(Unreadable, match="binary"):
        read_one(tmp_path, "late.txt", b"plain text line.\n" * 1000 + b"\x00 hidden")
    text = "Grüße aus Köln\r\nSecond line: 3,500 €.\n"
    bom = "\ufeff".encode(encoding)
    document = read_one(tmp_path, f"wide-{encoding}.md", bom + text.encode(encoding))
    assert document.text == text and document.title == "Grüße aus Köln"


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


def test_an_encrypted_pdf_with_an_empty_user_password_is_read_and_a_real_password_is_a_skip(tmp_path):
    plain = make_pdf([["The vault opens at nine every morning."]])
    for algorithm in ("RC4-128", "AES-256"):
        document = read_one(tmp_path, f"open-{algorithm}.pdf", encrypt_pdf(plain, "", algorithm))
        assert "The vault opens at nine every morning." in document.text
    with pytest.raises(Unreadable, match=f"{ENCRYPTED} .needs a password"):
        read_one(tmp_path, "locked.pdf", encrypt_pdf(plain, "secret"))


def test_a_pdf_heading_does_not_split_the_wrapped_paragraph_under_it_into_lines(tmp_path):
    pdf = make_pdf([["Benefits", "New employees are enrolled in the health plan from",
                     "their first day. Dental cover can be added at any", "time during the year."]])
    document = read_one(tmp_path, "handbook.pdf", pdf)
    spans = [s for p in chunk(document, 1000, 0) for s in p.sentences]
    assert [document.text[s.start : s.end] for s in spans] == [
        "Benefits",
        "New employees are enrolled in the health plan from\ntheir first day.",
        "Dental cover can be added at any\ntime during the year.",
    ]


@pytest.mark.parametrize("html", [
    '<html><body><nav><a href="/">Home</a></nav></body></html>',
    '<html><body><div class="menu"><a href="/">Home</a> | <a href="/b">Blog</a> | <a href="/c">Contact us</a></div></body></html>',
])
def test_html_that_is_only_navigation_is_skipped_as_no_main_text(tmp_path, html):
    with pytest.raises(Unreadable, match=NO_MAIN_TEXT):
        read_one(tmp_path, "menu.html", html)


def test_a_short_html_page_of_real_text_is_kept(tmp_path):
    assert read_one(tmp_path, "note.html", "<html><body><p>Closed on <a href=/m>Mondays</a>.</p></body></html>").text


def test_a_doctype_internal_subset_does_not_leak_into_the_text(tmp_path):
    html = ('<!DOCTYPE html [\n  <!ENTITY co "Example Corp">\n]>\n<html><body><p>Honey bees live in colonies '
            "with a single queen that lays all the eggs of the hive.</p></body></html>")
    document = read_one(tmp_path, "bees.html", html)
    assert document.text == "Honey bees live in colonies with a single queen that lays all the eggs of the hive.\n"


def test_names_with_control_characters_are_escaped_for_display_only():
    assert printable_name("a\nb\x1b[31m.txt") == "a\\nb\\x1b[31m.txt"
    assert printable_name("Grüße/日本.txt") == "Grüße/日本.txt"


def test_skips_are_summarised_by_reason_with_the_first_few_names():
    skipped = [Skipped(f"f{i:05}.bin", UNSUPPORTED) for i in range(9_990)]
    skipped += [Skipped(f"b{i}.txt", BINARY, "contains NUL bytes") for i in range(2)] + [Skipped("x\ny.txt", BINARY)]
    assert summarise_skips(skipped) == [
        "9,990 unsupported type (f00000.bin, f00001.bin, f00002.bin, …)",
        "3 binary (b0.txt, b1.txt, x\\ny.txt)",
    ]
    assert summarise_skips([]) == []


def test_reading_reports_progress_page_by_page_and_always_the_whole_size(tmp_path):
    corpus = write_corpus(tmp_path, {"three.pdf": make_pdf([["One."], ["Two."], ["Three."]]), "bad.txt": b"a\x00b"})
    files = {f.source: f for f in discover(corpus)[0]}
    reported = []
    read_document(files["three.pdf"], 10**6, reported.append)
    assert len(reported) == 3 and sum(reported) == files["three.pdf"].size == (corpus / "three.pdf").stat().st_size
    reported.clear()
    with pytest.raises(Unreadable):
        read_document(files["bad.txt"], 10**6, reported.append)
    assert sum(reported) == 3


def test_a_text_file_is_titled_by_its_first_line_unless_that_line_is_a_paragraph(tmp_path):
    assert read_one(tmp_path, "guide.txt", b"Staff handbook\n\nLeave is booked in the portal.\n").title == "Staff handbook"
    paragraph = b"Porsche is a German automobile manufacturer specializing in high-performance sports cars.\n"
    assert read_one(tmp_path, "Porsche.txt", paragraph).title == "Porsche"  # a sentence, not a title
    assert read_one(tmp_path, "Long.txt", b"word " * 40 + b"\n").title == "Long"  # longer than a title
