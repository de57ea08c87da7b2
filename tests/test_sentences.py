from hypothesis import given, settings as hypothesis_settings, strategies as st

from index.sentences import paragraphs, sentences
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


def test_sentences_within_a_range_stay_in_it():
    text = "Before. Inside one. Inside two. After."
    inside = sentences(text, Span(8, 31))
    assert texts(inside, text) == ["Inside one.", "Inside two."]


@hypothesis_settings(max_examples=300)
@given(st.lists(st.sampled_from(list("ab Z.?!\n\t\"'”") + ["Mr.", " e.g.", "\n\n", "3.5"]), max_size=80).map("".join))
def test_sentences_are_trimmed_ordered_disjoint_and_cover_every_visible_character(text):
    spans = [s for p in paragraphs(text) for s in sentences(text, p)]
    covered = set()
    previous_end = 0
    for span in spans:
        assert previous_end <= span.start < span.end <= len(text)
        assert not text[span.start].isspace() and not text[span.end - 1].isspace()
        covered.update(range(span.start, span.end))
        previous_end = span.end
    visible = {i for i, char in enumerate(text) if not char.isspace()}
    assert visible <= covered
