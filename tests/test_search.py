import pytest

from bot.answering.answer import Answerer
from index.build import build_index
from index.search.hybrid import Searcher, Weights
from tests.conftest import make_settings, write_corpus


@pytest.fixture
def settings(tmp_path):
    write_corpus(tmp_path, {
        "bees.txt": "Bees make honey in hives.\n\nA colony has one queen and 3,000 drones. The hive holds 40 frames.",
        "guide/wasps.md": "# Wasps\n\nWasps build paper nests.",
    })
    settings = make_settings(tmp_path)
    build_index(settings)
    return settings


@pytest.fixture
def searcher(settings):
    return Answerer(settings).searcher


def test_hits_are_every_sentence_of_the_best_passages_best_first_with_exact_text(searcher):
    hits = searcher.search("How many drones does a colony have?")
    assert hits == sorted(hits, key=lambda hit: -hit.score)
    assert "3,000 drones" in hits[0].text
    for hit in hits:
        assert searcher.document_text(hit.document_id)[hit.start : hit.end] == hit.text


def test_a_number_counting_the_asked_noun_is_preferred(settings):
    question = "How many drones live in a colony?"
    weights = Weights()
    hits = Answerer(settings, weights).searcher.search(question)
    plain = Answerer(settings, Weights(answer_type=0.0, counted_noun=0.0)).searcher.search(question)
    plain_scores = {hit.sentence_id: hit.score for hit in plain}
    bonus = {hit.text: round(hit.score - plain_scores[hit.sentence_id], 6) for hit in hits}
    # A number that counts drones earns both bonuses, any other number the answer-type one, no number none.
    assert bonus.pop("A colony has one queen and 3,000 drones.") == round(weights.answer_type + weights.counted_noun, 6)
    assert bonus.pop("The hive holds 40 frames.") == round(weights.answer_type, 6)
    assert bonus and set(bonus.values()) == {0.0}
    assert "3,000 drones" in hits[0].text


def test_document_listing_and_details(searcher):
    assert searcher.list_documents() == [("bees.txt", "bees"), ("guide/wasps.md", "Wasps")]  # a first line that is a sentence: the name
    assert searcher.list_documents("wasp") == [("guide/wasps.md", "Wasps")]
    assert searcher.list_documents("%") == []  # LIKE wildcards are taken literally
    info = searcher.document_info("guide/wasps.md")
    assert info["kind"] == "md" and info["passages"] == 1 and searcher.document_info("nope") is None


def test_a_searcher_is_usable_on_its_own(tmp_path):
    write_corpus(tmp_path, {"a.txt": "Owls hunt at night."})
    settings = make_settings(tmp_path)
    build_index(settings)
    searcher = Searcher(settings, lambda question: Answerer(settings).engine.embedder.embed([question])[0])
    assert searcher.search("When do owls hunt?")[0].text == "Owls hunt at night."
    searcher.close()


def test_the_document_cache_is_bounded_by_characters_not_documents(tmp_path):
    texts = {f"d{n}.txt": f"Document {n} repeats itself. " * (20 * (n + 1)) for n in range(6)}
    write_corpus(tmp_path, {**texts, "huge.txt": "A huge document. " * 400})
    settings = make_settings(tmp_path)
    build_index(settings)
    bound = 2_500
    searcher = Searcher(settings, lambda question: None, document_cache_chars=bound)
    sources = dict(searcher._metadata.execute("SELECT id, source FROM documents").fetchall())
    for _ in range(2):
        for document_id, source in sources.items():
            assert searcher.document_text(document_id) == texts.get(source, "A huge document. " * 400)
            assert 0 < searcher.cached_document_chars() <= bound
    searcher.close()
