"""Verbatim across every format: load -> chunk (and, for a few examples, answer) never changes a character.

Documents are generated as paragraphs of lines of sentences, then written as
.txt/.md (UTF-8 with or without a BOM, UTF-16 with one; LF or CRLF), HTML or PDF.
"""

from __future__ import annotations

import bisect
import codecs
import html
import itertools
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from index.errors import Unreadable
from index.passages.chunk import chunk
from index.passages.sentences import paragraphs
from index.sources.load import CorpusFile, read_document
from tests.pdfs import make_pdf

ASCII_WORDS = ["honey", "Bees", "make", "the", "hive", "Dr.", "e.g.", "U.S.", "3,500", "(note)", "it's", "x", "Queen",
               "over-wintering", "\"quoted\"", "a;", "and,", "J."]
OTHER_WORDS = ["Köln", "straße", "naïve", "日本語", "café", "Über", "“Ja”", "it’s", "—", "€5", "Ωmega"]
SENTENCE = st.builds(
    lambda words, end: " ".join(words) + end,
    st.lists(st.sampled_from(ASCII_WORDS + OTHER_WORDS), min_size=1, max_size=14),
    st.sampled_from([".", ".", "!", "?", "", "…", '."', ";"]),
)
LINE = st.lists(SENTENCE, min_size=1, max_size=3).map(" ".join)
PARAGRAPH = st.lists(LINE, min_size=1, max_size=4)
DOCUMENT = st.lists(PARAGRAPH, min_size=1, max_size=5)
# A sentence may end at a sentence or clause mark, at a line's end, or where an overlong run was cut.
ENDINGS = ".!?…\"'”’)];:,"
_FILES = Path(tempfile.mkdtemp(prefix="verbatim-formats-"))
_names = itertools.count()


def ascii_only(document: list[list[str]]) -> list[list[str]]:
    """The standard PDF fonts of tests/pdfs.py show ASCII only."""
    return [[line.encode("ascii", "replace").decode().replace("?", "q") or "x" for line in paragraph]
            for paragraph in document]


def render(document: list[list[str]], kind: str, newline: str, encoding: str) -> tuple[bytes, str | None]:
    """The file's bytes and, for txt/md, the exact text a reader must get back."""
    if kind in ("txt", "md"):
        text = (newline * 2).join(newline.join(paragraph) for paragraph in document) + newline
        bom = {"utf-8-sig": codecs.BOM_UTF8, "utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}
        return bom.get(encoding, b"") + text.encode("utf-8" if encoding == "utf-8-sig" else encoding), text
    if kind == "html":
        body = "".join(f"<p>{html.escape(' '.join(paragraph))}</p>\n" for paragraph in document)
        return f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>T</title></head><body><article>{body}</article></body></html>".encode(), None
    pages = [[line for paragraph in document[i : i + 2] for line in paragraph] for i in range(0, len(document), 2)]
    return make_pdf(pages), None


def load(document, kind, newline, encoding):
    raw, expected = render(ascii_only(document) if kind == "pdf" else document, kind, newline, encoding)
    path = _FILES / f"{next(_names)}.{kind}"
    path.write_bytes(raw)
    return read_document(CorpusFile(path, path.name), 10**7), expected


FORMAT = st.sampled_from([("txt", "utf-8"), ("md", "utf-8-sig"), ("txt", "utf-16-le"), ("md", "utf-16-be"),
                          ("html", "utf-8"), ("pdf", "ascii")])


@hypothesis_settings(max_examples=300, deadline=None)
@given(DOCUMENT, FORMAT, st.sampled_from(["\n", "\r\n"]), st.integers(30, 400), st.integers(0, 150))
def test_every_sentence_is_an_exact_trimmed_span_inside_one_paragraph_with_its_line(
    document, kind_encoding, newline, max_chars, min_chars
):
    kind, encoding = kind_encoding
    try:
        loaded, expected = load(document, kind, newline, encoding)
    except Unreadable:
        assert kind == "html"  # trafilatura may find no main text in a tiny page
        return
    text = loaded.text
    if expected is not None:
        assert text == expected  # the decoded file, byte-order mark aside
    paragraph_spans = paragraphs(text)
    starts = [p.start for p in paragraph_spans]
    for passage in chunk(loaded, max_chars, min_chars):
        assert passage.line == text.count("\n", 0, passage.start) + 1
        assert (passage.start, passage.end) == (passage.sentences[0].start, passage.sentences[-1].end)
        for sentence in passage.sentences:
            quote = text[sentence.start : sentence.end]
            assert quote and quote == quote.strip()
            assert len(quote) <= max_chars
            paragraph = paragraph_spans[bisect.bisect_right(starts, sentence.start) - 1]
            assert paragraph.start <= sentence.start and sentence.end <= paragraph.end
            after = text[sentence.end : paragraph.end]
            at_boundary = quote[-1] in ENDINGS or not after.strip() or after[: len(after) - len(after.lstrip())].count("\n")
            assert at_boundary or len(quote) + len(after.split(maxsplit=1)[0]) + 1 > max_chars // 2
            if kind == "pdf":
                page = bisect.bisect_right(loaded.page_starts, sentence.start)
                page_end = loaded.page_starts[page] if page < len(loaded.page_starts) else len(text)
                assert sentence.end <= page_end


@hypothesis_settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(DOCUMENT, FORMAT), min_size=2, max_size=3), st.lists(st.sampled_from(ASCII_WORDS + OTHER_WORDS), min_size=1, max_size=4))
def test_answers_quote_exactly_and_cite_the_right_line_and_page_in_every_format(tmp_path_factory, corpus, question):
    from bot.answering.answer import Answerer
    from index.build import build_index
    from tests.conftest import ANSWER_ALWAYS, make_settings

    root = tmp_path_factory.mktemp("formats")
    (root / "corpus").mkdir()
    expected_text = {}
    for number, (document, (kind, encoding)) in enumerate(corpus):
        raw, _ = render(ascii_only(document) if kind == "pdf" else document, kind, "\r\n" if number % 2 else "\n", encoding)
        (root / "corpus" / f"d{number}.{kind}").write_bytes(raw)
        try:
            expected_text[f"d{number}.{kind}"] = read_document(CorpusFile(root / "corpus" / f"d{number}.{kind}", ""), 10**7)
        except Unreadable:
            pass
    settings = make_settings(root, **ANSWER_ALWAYS, passage_max_chars=120, quote_max_chars=160)
    build_index(settings)
    answer = Answerer(settings).answer(" ".join(question) + "?", top=5)
    assert answer.quotes or not expected_text
    for quote in answer.quotes:
        loaded = expected_text[quote.source]
        assert loaded.text[quote.start : quote.end] == quote.text
        # Whole sentences: a quote that swallows the next character (text and end both +1) fails here.
        spans = [s for p in chunk(loaded, settings.passage_max_chars, settings.passage_min_chars) for s in p.sentences]
        assert quote.start in {s.start for s in spans} and quote.end in {s.end for s in spans}
        if loaded.kind == "pdf":
            page_start = loaded.page_starts[quote.page - 1]
            assert bisect.bisect_right(loaded.page_starts, quote.start) == quote.page
            assert quote.line == loaded.text.count("\n", page_start, quote.start) + 1
        else:
            assert quote.page is None and quote.line == loaded.text.count("\n", 0, quote.start) + 1
