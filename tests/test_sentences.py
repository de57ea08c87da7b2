from hypothesis import given, settings as hypothesis_settings, strategies as st

from index.passages.sentences import paragraphs, sentences
from index.types import Span


def texts(spans: list[Span], text: str) -> list[str]:
    return [text[span.start : span.end] for span in spans]


def test_paragraphs_are_split_on_blank_lines_and_trimmed():
    text = "  First para\nstill first.\n\n \n Second.\n\n\nThird  \n"
    assert texts(paragraphs(text), text) == ["First para\nstill first.", "Second.", "Third"]


def test_sentences_respect_abbreviations_initials_and_quotes():
    text = 'Dr. Smith met J. Doe in the U.S. Army in 1990. He said "Go!" Then he left. Was it 3.5 km? Yes.'
    assert texts(sentences(text), text) == [
        "Dr. Smith met J. Doe in the U.S. Army in 1990.",
        'He said "Go!"',
        "Then he left.",
        "Was it 3.5 km?",
        "Yes.",
    ]


def test_hard_wrapped_prose_is_one_unit_but_lines_of_a_list_stand_alone():
    wrapped = "This sentence was wrapped by an editor at a\nfixed width so that it continues on the\nnext line."
    assert texts(sentences(wrapped), wrapped) == [wrapped]
    byline = "Abhinav Pandya\nAbhinav Pandya is the founder of a think tank.\nSee more from this Author"
    assert len(sentences(byline)) == 3
    listing = "Steps to follow today\n- open the door\n- close the window"
    assert texts(sentences(listing), listing) == ["Steps to follow today", "- open the door", "- close the window"]


def test_a_heading_stands_alone_and_the_wrapped_lines_under_it_run_on():
    # pypdf's layout: single newlines, a short heading line, then wrapped lines.
    page = ("Benefits\nNew employees are enrolled in the health plan from\ntheir first day. Dental cover can be "
            "added at any\ntime during the year.\nLeave\nEvery employee gets twenty-five days of paid leave\n"
            "a year, plus public holidays.")
    assert texts(sentences(page, layout=True), page) == [
        "Benefits",
        "New employees are enrolled in the health plan from\ntheir first day.",
        "Dental cover can be added at any\ntime during the year.",
        "Leave",
        "Every employee gets twenty-five days of paid leave\na year, plus public holidays.",
    ]


def test_layout_lines_wider_than_plain_text_lines_still_run_on():
    line = "a wide line of a PDF page set in a small font, which runs on past a hundred characters to the far margin and"
    page = f"Heading\n{line}\n{line}\nends here."
    assert texts(sentences(page, layout=True), page) == ["Heading", f"{line}\n{line}\nends here."]
    # In plain text such lines are paragraphs written on one line each.
    assert len(sentences(page)) == 4


def test_an_overlong_sentence_is_split_after_clauses_or_words_into_exact_spans():
    clause = "the committee met again, and again it could not agree; "
    text = clause * 40 + "so it adjourned."
    pieces = sentences(text, max_chars=200)
    assert len(pieces) > 10
    for piece in pieces:
        assert piece.end - piece.start <= 200
        assert text[piece.end - 1] in ",;." and not text[piece.start].isspace()
    token = "x" * 2500
    assert [(s.start, s.end) for s in sentences(token, max_chars=1000)] == [(0, 1000), (1000, 2000), (2000, 2500)]


def test_sentences_within_a_range_stay_in_it():
    text = "Before. Inside one. Inside two. After."
    inside = sentences(text, Span(8, 31))
    assert texts(inside, text) == ["Inside one.", "Inside two."]


@hypothesis_settings(max_examples=300)
@given(
    st.lists(st.sampled_from(list("ab Z.?!,;\n\t\"'”") + ["Mr.", " e.g.", "\n\n", "3.5", "- "]), max_size=80).map("".join),
    st.sampled_from([None, 5, 12, 40]),
    st.booleans(),
)
def test_sentences_are_trimmed_ordered_disjoint_and_cover_every_visible_character(text, max_chars, layout):
    spans = [s for p in paragraphs(text) for s in sentences(text, p, max_chars, layout)]
    covered = set()
    previous_end = 0
    for span in spans:
        assert previous_end <= span.start < span.end <= len(text)
        assert not text[span.start].isspace() and not text[span.end - 1].isspace()
        assert max_chars is None or span.end - span.start <= max_chars
        covered.update(range(span.start, span.end))
        previous_end = span.end
    visible = {i for i, char in enumerate(text) if not char.isspace()}
    assert visible <= covered
