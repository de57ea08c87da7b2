import io
import zipfile

import pytest

from hypothesis import given, strategies as st

from bot.answering.answer import Answerer
from bot.answering.locate import answer_located
from index.build import build_index
from index.errors import Unreadable
from index.sources.formats import markdown_sections
from index.sources.load import discover, read_document
from index.status import show_document
from tests.conftest import make_settings, write_corpus
from tests.documents import make_docx, make_epub, make_odt, make_pptx

RST = """=====
Guide
=====

Install
=======

Run the installer as an administrator and reboot the machine twice afterwards.

Linux
-----

On Linux the command line tools need glibc version 2.31 or newer to start.
"""

CORPUS = {
    "handbook.docx": make_docx([(1, "Leave"), (0, "Every employee gets twenty-seven days of paid leave a year."),
                                (2, "Carry over"), (0, "Up to five unused days may be carried into the next year.")],
                               title="Handbook"),
    "deck.pptx": make_pptx([("Intro", ["Welcome to the quarterly review."]),
                            ("Results", ["Revenue grew by fourteen percent in the third quarter.", "Costs fell."])]),
    "book.epub": make_epub("Harbour Tales", [
        ("The Harbour", ["The lighthouse keeper, Ada Brand, lit the lamp at dusk every day for forty years."]),
        ("The Storm", ["In the winter of 1911 a storm broke the harbour wall in three places."])]),
    "guide.rst": RST,
    "notes.md": "# Office\r\n\r\nThe office opens at eight.\r\n\r\nParking\r\n-------\r\n\r\n"
                "Visitors park in the yellow spaces beside the loading dock.\r\n\r\n```\r\n# not a heading\r\n```\r\n",
    "garden.odt": make_odt([(1, "Garden"), (0, "Tomatoes need six hours of direct sun each day to ripen."),
                            (2, "Watering"), (0, "Water the vegetable beds early in the morning before work.")]),
}

QUESTIONS = [
    ("How many days of paid leave does an employee get?", "handbook.docx", "twenty-seven days",
     {"section": "Leave"}),
    ("How many unused days may be carried into the next year?", "handbook.docx", "five unused days",
     {"section": "Leave › Carry over"}),
    ("How much did revenue grow in the third quarter?", "deck.pptx", "fourteen percent",
     {"slide": 2, "section": "Results", "page": None}),
    ("When did a storm break the harbour wall?", "book.epub", "1911", {"section": "The Storm"}),
    ("Who lit the lighthouse lamp at dusk?", "book.epub", "Ada Brand", {"section": "The Harbour"}),
    ("Which glibc version do the command line tools need on Linux?", "guide.rst", "2.31",
     {"section": "Guide › Install › Linux"}),
    ("Where do visitors park?", "notes.md", "yellow spaces", {"section": "Office › Parking"}),
    ("How many hours of direct sun do tomatoes need?", "garden.odt", "six hours", {"section": "Garden"}),
]


@pytest.fixture(scope="module")
def formats_index(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("formats")
    write_corpus(tmp_path, CORPUS)
    settings = make_settings(tmp_path)
    summary = build_index(settings)
    assert summary.skipped == () and summary.documents == len(CORPUS)
    return settings, Answerer(settings)


@pytest.mark.parametrize("question, source, fact, location", QUESTIONS)
def test_each_formats_fact_is_quoted_exactly_as_index_show_prints_it_with_its_location(
        formats_index, question, source, fact, location):
    settings, answerer = formats_index
    answer = answer_located(answerer, question)
    assert answer.answered
    quote = answer.quotes[0]
    assert quote.source == source and fact in quote.text
    shown = show_document(settings, source)["text"]
    assert shown[quote.start : quote.end] == quote.text
    for field, expected in location.items():
        assert getattr(quote, field) == expected, field


def test_a_slides_line_counts_within_the_slide_and_the_citation_names_it(formats_index):
    _, answerer = formats_index
    quote = answer_located(answerer, "How much did revenue grow in the third quarter?").quotes[0]
    assert quote.citation() == "deck.pptx, slide 2, line 3 (Results)"
    record = answer_located(answerer, "How much did revenue grow in the third quarter?").to_json()["quotes"][0]
    assert record["slide"] == 2 and record["section"] == "Results" and "page" not in record


def test_rst_is_indexed_exactly_as_written_and_index_show_lists_the_sections(formats_index):
    settings, _ = formats_index
    shown = show_document(settings, "guide.rst")
    assert shown["text"] == RST
    assert [(s["path"], RST[s["start"]:].split("\n")[0]) for s in shown["sections"]] == [
        ("Guide", "====="), ("Guide › Install", "Install"), ("Guide › Install › Linux", "Linux")]


def test_sections_survive_an_incremental_rebuild(tmp_path):
    write_corpus(tmp_path, {"handbook.docx": CORPUS["handbook.docx"]})
    settings = make_settings(tmp_path)
    build_index(settings)
    write_corpus(tmp_path, {"other.txt": "Bicycles may be parked in the courtyard behind the main building."})
    summary = build_index(settings)
    assert summary.unchanged == 1 and summary.added == 1
    quote = answer_located(Answerer(settings), "How many unused days may be carried into the next year?").quotes[0]
    assert quote.source == "handbook.docx" and quote.section == "Leave › Carry over"


def _zip_with(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _encrypted_entry() -> bytes:
    # zipfile cannot write encrypted entries: set the "encrypted" flag of the one
    # entry in its central directory record, as a zip tool's password would.
    zipped = bytearray(_zip_with({"word/document.xml": b"scrambled"}))
    record = zipped.index(b"PK\x01\x02")
    zipped[record + 8] |= 0x1
    return bytes(zipped)


def _with_member(zipped: bytes, name: str, data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        members = {member: archive.read(member) for member in archive.namelist()}
    return _zip_with({**members, name: data})


@pytest.mark.parametrize("name, content, reason", [
    ("locked.odt", _with_member(make_odt([(0, "Secret.")]), "META-INF/manifest.xml",
                                b'<manifest:encryption-data manifest:checksum="x"/>'), "password-protected OpenDocument"),
    ("drm.epub", _with_member(make_epub("B", [("C", ["Text."])]), "META-INF/encryption.xml", b"<encryption/>"),
     "DRM-protected"),
    ("broken.docx", b"PK\x03\x04 this is not really a zip", "corrupt file: not a readable zip"),
    ("locked.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "password-protected"),
    ("bomb.pptx", _zip_with({"ppt/zeros.xml": b"\x00" * 12_000_000}), "zip bomb"),
    ("zipcrypto.docx", _encrypted_entry(), "encrypted zip entries"),
    ("macros.docx", _with_member(make_docx([(0, "Hello there.")]), "word/vbaProject.bin", b"\x00macro"), "contains macros"),
    ("notword.docx", _zip_with({"hello.txt": b"hi"}), "malformed Word file"),
    ("empty.epub", _zip_with({"mimetype": b"application/epub+zip"}), "malformed EPUB"),
    ("broken.odt", _zip_with({"content.xml": b"<not xml"}), "malformed OpenDocument"),
    ("empty.rst", "", "empty"),
])
def test_bad_files_are_skipped_with_the_reason(tmp_path, name, content, reason):
    corpus = write_corpus(tmp_path, {name: content})
    (file,) = discover(corpus)[0]
    with pytest.raises(Unreadable, match=reason):
        read_document(file, max_bytes=1_000_000)


def test_a_bad_office_file_does_not_stop_the_build(tmp_path):
    write_corpus(tmp_path, {"good.docx": CORPUS["handbook.docx"], "bad.pptx": b"PK\x03\x04 nope"})
    summary = build_index(make_settings(tmp_path))
    assert summary.documents == 1
    assert [(s.source, s.reason.split(":")[0]) for s in summary.skipped] == [("bad.pptx", "corrupt file")]


_md_lines = st.lists(st.sampled_from(["# Title", "## Sub", "text", "", "-----", "```", "    # code", "Setext", "===",
                                      "> # quoted"]), max_size=30)


@given(_md_lines, st.sampled_from(["\n", "\r\n"]))
def test_markdown_sections_start_at_line_starts_in_order(lines, newline):
    text = newline.join(lines)
    sections = markdown_sections(text)
    starts = [section.start for section in sections]
    assert starts == sorted(starts)
    assert all(start == 0 or text[start - 1] == "\n" for start in starts)
    assert all(section.path for section in sections)
