"""Headings and label lines are context, not answers: the citation names them, no quote is one by itself."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.answering.answer import Answerer, select_quotes
from bot.answering.headings import bare, is_label
from bot.answering.locate import answer_located
from index.build import build_index
from index.search.hybrid import Hit
from index.sources.formats import html_sections
from index.sources.load import _html
from tests.conftest import ANSWER_ALWAYS, make_settings, write_corpus
from tests.documents import make_docx

MARKDOWN = """# Staff handbook

Welcome to the office. This handbook explains the practical things.

## Car parking

Staff park their cars in the underground garage on level B2. Visitors park in the spaces by the main entrance.

## Office hours

The office is open from eight in the morning until six in the evening. On Fridays it closes at four.

Wireless network

The guest wifi network is called Lobby and its password is printed at the reception desk.
"""
HTML = b"""<!DOCTYPE html><html><head><title>Facilities</title></head><body>
<nav><h2>Menu</h2><a href="/">Home</a></nav>
<article><h1>Facilities</h1>
<p>This page describes the building's facilities for everyone who works here.</p>
<h2>Bicycles</h2>
<p>Bicycles go in the locked shed behind the building, and the code for its door is at reception.</p>
<h2>Kitchen</h2>
<p>The kitchen on the third floor has a fridge, a microwave and free coffee for staff.</p>
</article></body></html>"""
DOCX = make_docx([
    (1, "Office services"),
    (0, "These services are run by the facilities team on the ground floor."),
    (2, "Printing"),
    (0, "Printers stand beside the lifts on every floor and print with your badge."),
    (2, "Fire drills"),
    (0, "A fire drill is held twice a year, and everyone leaves by the nearest stairs."),
])
TITLES = {"Staff handbook", "Car parking", "Office hours", "Wireless network", "Facilities", "Bicycles", "Kitchen",
          "Office services", "Printing", "Fire drills"}
# Question, the document that answers it, and the heading its citation names.
QUESTIONS = [
    ("Where do I park my car?", "handbook.md", "Car parking"),
    ("When is the office open?", "handbook.md", "Office hours"),
    ("What is the wireless network password?", "handbook.md", None),  # a label line, not a Markdown heading
    ("Where do bicycles go?", "facilities.html", "Bicycles"),
    ("Is there a kitchen?", "facilities.html", "Kitchen"),
    ("Where are the printers?", "services.docx", "Printing"),
    ("How often is there a fire drill?", "services.docx", "Fire drills"),
]


@pytest.fixture(scope="module")
def handbook(tmp_path_factory):
    root = tmp_path_factory.mktemp("handbook")
    write_corpus(root, {"handbook.md": MARKDOWN, "facilities.html": HTML, "services.docx": DOCX})
    settings = make_settings(root, **ANSWER_ALWAYS)
    build_index(settings)
    return settings


def _context_only(text: str) -> bool:
    return bare(text) in TITLES


@pytest.mark.parametrize(("question", "source", "heading"), QUESTIONS)
def test_no_quote_is_a_heading_or_label_and_the_citation_names_the_heading(handbook, question, source, heading):
    answer = answer_located(Answerer(handbook), question, 3)
    assert answer.answered and answer.quotes
    assert not [quote.text for quote in answer.quotes if _context_only(quote.text)]
    first = answer.quotes[0]
    assert first.source == source
    if heading:
        assert first.section.endswith(heading) and heading in first.citation()


def test_a_refusals_closest_passage_is_not_a_heading_either(handbook):
    strict = Answerer(handbook.model_copy(update={"selector_min_probability": 1.0, "ranker_min_probability": 1.0}))
    for question, source, heading in QUESTIONS:
        answer = answer_located(strict, question)
        assert not answer.answered and answer.closest is not None
        assert not _context_only(answer.closest.text), question
        if heading and answer.closest.source == source:
            assert answer.closest.section.endswith(heading)


def test_an_html_pages_headings_are_sections_where_its_text_has_them():
    text, _ = _html(HTML)
    sections = html_sections(HTML, text)
    assert [(section.path, text[section.start:].split("\n")[0]) for section in sections] == [
        ("Facilities", "Facilities"), ("Facilities › Bicycles", "Bicycles"), ("Facilities › Kitchen", "Kitchen")]
    assert html_sections(b"", "text") == ()


def _hit(source: str, text: str, document: str, sentence_id: int, score: float) -> Hit:
    start, document_id = document.index(text), 0 if source == "a" else 1
    return Hit(source, start, start + len(text), 1, text, score, document_id, sentence_id, document_id)


def test_a_quote_whose_words_an_earlier_quote_already_shows_is_dropped():
    documents = {"a": "Lost your badge? Ask at reception.", "b": "Opening hours vary.\n\nAsk at reception."}
    ranked = [_hit("a", "Lost your badge?", documents["a"], 1, 3.0), _hit("a", "Ask at reception.", documents["a"], 2, 2.0),
              _hit("b", "Ask at reception.", documents["b"], 11, 1.0), _hit("b", "Opening hours vary.", documents["b"], 10, 0.5)]
    texts = {0: documents["a"], 1: documents["b"]}
    quotes = select_quotes(ranked, ranked, 3, 300, lambda document_id: (texts[document_id], ()))
    assert [(quote.source, quote.text) for quote in quotes] == [("a", documents["a"]), ("b", "Opening hours vary.")]


@given(st.text(min_size=1, max_size=60), st.sampled_from(".!?…;,"))
def test_a_line_that_ends_as_a_sentence_does_is_never_a_label(words, ending):
    assert not is_label(words + ending)


@pytest.mark.parametrize(("line", "label"), [
    ("Car parking", True), ("## Office hours", True), ("Opening hours:", True), ("Bicycles", True),
    ("Car parking\n-----------", True), ("Password: Lobby", False), ("- Free coffee", False), ("Room 101", False),
    ("Kitchen | third floor", False), ("Visitors park by the entrance.", False),
    ("Printers stand beside the lifts on every floor", False),
])
def test_labels_are_short_lines_without_a_sentences_ending(line, label):
    assert is_label(line) == label


def test_a_byline_still_answers_who_wrote_the_document(tmp_path):
    write_corpus(tmp_path, {"column.txt": "Why offices need bike sheds\n\nBy Jane Doe\n\n"
                            "Cycling to work is rising, and offices have not kept up with the demand for safe parking.\n"})
    settings = make_settings(tmp_path, **ANSWER_ALWAYS)
    build_index(settings)
    answer = Answerer(settings).answer("Who wrote this?")
    assert [quote.text for quote in answer.quotes] == ["By Jane Doe"]
