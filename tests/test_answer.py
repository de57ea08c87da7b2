import string

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from bot.answering.answer import Answerer, check_question
from index.build import build_index
from index.errors import BadQuestion, IndexMismatch, IndexMissing
from index.search.hybrid import Hit
from tests.conftest import ANSWER_ALWAYS, make_settings, write_corpus


@pytest.fixture
def seed_answerer(seed_settings):
    build_index(seed_settings)
    return Answerer(seed_settings)


def test_seed_article_answers_the_troops_question_with_the_exact_quote(seed_answerer, seed_settings):
    answer = seed_answerer.answer("How many troops would Pakistan send to Gaza?")
    assert answer.answered
    assert "3,500 troops" in answer.quotes[0].text
    text = (seed_settings.corpus_dir / answer.quotes[0].source).read_text(encoding="utf-8")
    for quote in answer.quotes:
        assert text[quote.start : quote.end] == quote.text
        assert quote.line == text.count("\n", 0, quote.start) + 1
    spans = [(q.source, q.start, q.end) for q in answer.quotes]
    assert len(set(spans)) == len(spans)
    assert len({q.text for q in answer.quotes}) == len(answer.quotes)


@pytest.mark.parametrize(
    "question, expected",
    [("Who wrote this?", "Abhinav Pandya is the founder"), ("What is the title of this article?", "Can Pakistan Be Trusted in Gaza?")],
)
def test_questions_about_the_document_itself_quote_its_byline_or_title(seed_answerer, question, expected):
    answer = seed_answerer.answer(question)
    assert answer.answered and expected in answer.quotes[0].text
    assert len(answer.quotes) == 1  # nothing after it that only shares the question's other words


def test_navigation_lines_are_never_quoted(seed_answerer):
    answer = seed_answerer.answer("See more on this Topic about Kurdish autonomy and congressional offices")
    assert all("See more" not in quote.text and "Congressional Offices" not in quote.text for quote in answer.quotes)


@pytest.mark.parametrize("question", ["Who won the football World Cup in 2022?", "What is a good recipe for lasagna?"])
def test_questions_the_article_cannot_answer_are_refused(seed_answerer, question):
    answer = seed_answerer.answer(question)
    assert not answer.answered and answer.quotes == ()


def test_bad_questions_get_helpful_errors():
    with pytest.raises(BadQuestion, match="empty"):
        check_question("", 100)
    with pytest.raises(BadQuestion, match="under 100"):
        check_question("x" * 101, 100)
    with pytest.raises(BadQuestion, match="no words"):
        check_question("?!", 100)


def test_missing_index_and_other_model_are_clear_errors(tmp_path, seed_settings):
    with pytest.raises(IndexMissing):
        Answerer(make_settings(tmp_path / "elsewhere"))
    build_index(seed_settings)
    other = seed_settings.model_copy(update={"model": "some/other-model"})
    with pytest.raises(IndexMismatch, match="built with model"):
        Answerer(other)


def test_a_rebuilt_index_is_picked_up_without_a_restart(tmp_path):
    write_corpus(tmp_path, {"a.txt": "The lighthouse keeper lit the lamp at dusk every evening."})
    settings = make_settings(tmp_path)
    build_index(settings)
    answerer = Answerer(settings)
    assert not answerer.answer("What colour is the submarine in the harbour?").answered
    write_corpus(tmp_path, {"b.txt": "The submarine in the harbour is painted bright yellow."})
    build_index(settings)
    answer = answerer.answer("What colour is the submarine in the harbour?")
    assert answer.answered and answer.quotes[0].source == "b.txt"


WORDS = st.sampled_from("honey bees hive queen drone wax flower summer winter colony nectar".split())
SENTENCE = st.builds(
    lambda words, end: " ".join(words).capitalize() + end,
    st.lists(WORDS, min_size=1, max_size=8),
    st.sampled_from([".", "!", "?", "", "...", '."']),
)
SEPARATOR = st.sampled_from([" ", "  ", "\n", "\n\n", "\r\n\r\n", "\t", " \u00a0"])
DOCUMENT = st.builds(
    lambda parts, lead: lead + "".join(parts),
    st.lists(st.tuples(SENTENCE, SEPARATOR).map("".join), min_size=1, max_size=12),
    st.text(alphabet=string.whitespace, max_size=3),
)


@hypothesis_settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(documents=st.lists(DOCUMENT, min_size=1, max_size=3), question=st.lists(WORDS, min_size=1, max_size=4))
def test_every_quote_is_exactly_the_document_text_at_its_offsets(tmp_path_factory, documents, question):
    root = tmp_path_factory.mktemp("prop")
    write_corpus(root, {f"d{n}.txt": text for n, text in enumerate(documents)})
    settings = make_settings(root, **ANSWER_ALWAYS, passage_max_chars=80, quote_max_chars=120)
    build_index(settings)
    answer = Answerer(settings).answer(" ".join(question) + "?", top=5)
    for quote in answer.quotes:
        raw = documents[int(quote.source[1:-4])]
        assert raw[quote.start : quote.end] == quote.text
        assert quote.line == raw.count("\n", 0, quote.start) + 1


def test_pdf_quotes_cite_page_and_line_within_the_page(tmp_path):
    from tests.pdfs import make_pdf

    pages = [["Introduction to the annual report."], ["Revenue grew by twelve percent in the northern region."]]
    write_corpus(tmp_path, {"report.pdf": make_pdf(pages)})
    settings = make_settings(tmp_path)
    build_index(settings)
    answerer = Answerer(settings)
    answer = answerer.answer("How much did revenue grow in the northern region?")
    quote = answer.quotes[0]
    assert quote.page == 2 and quote.line == 1 and "twelve percent" in quote.text
    assert answerer.searcher.document_text(0)[quote.start : quote.end] == quote.text
    assert answer.to_json()["quotes"][0]["page"] == 2


def test_a_byline_must_be_by_and_a_capitalised_name():
    from bot.answering.answer import _about_the_document
    from index.search.hybrid import Hit

    def edge(number, text):
        return Hit("a.txt", number, number + len(text), 1, text, 0.0, 0, number, 0)

    edges = [edge(0, "A Title Of Sorts"), edge(1, "by the way it"), edge(2, "By Jane Doe"), edge(3, "Last words.")]
    assert _about_the_document("Who wrote this?", lambda: edges).text == "By Jane Doe"
    no_byline = [edge(0, "A title"), edge(1, "by the way it")]
    assert _about_the_document("Who wrote this?", lambda: no_byline) is None


def test_a_quote_is_widened_only_by_neighbours_the_ranker_scores_near_it():
    from bot.answering.answer import select_quotes

    text = "The rack opens at seven. Bicycles go in the basement rack. The canteen serves soup."
    spans = [(0, 24), (25, 58), (59, 83)]
    hits = [Hit("a.txt", start, end, 1, text[start:end], 1.0, 0, number, 0, order=number, rank_score=score)
            for number, ((start, end), score) in enumerate(zip(spans, (4.5, 5.0, -5.0)))]
    ranked = sorted(hits, key=lambda hit: -hit.order_key)

    def document(document_id):
        return text, ()

    near, = select_quotes(ranked, hits, 1, 380, document, margin=3.0)
    assert near.text == text[0:58]  # the canteen sentence is ruled out
    every, = select_quotes(ranked, hits, 1, 380, document)
    assert every.text == text and (every.start, every.end) == (0, 83)
