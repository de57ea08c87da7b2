import pytest

from bot.answer import Answerer
from index.build import build_index
from index.search import Searcher, Weights
from tests.conftest import make_settings, write_corpus


@pytest.fixture
def searcher(tmp_path):
    write_corpus(tmp_path, {
        "bees.txt": "Bees make honey in hives.\n\nA colony has one queen and 3,000 drones.",
        "guide/wasps.md": "# Wasps\n\nWasps build paper nests.",
    })
    settings = make_settings(tmp_path)
    build_index(settings)
    return Answerer(settings).searcher


def test_hits_are_every_sentence_of_the_best_passages_best_first_with_exact_text(searcher):
    hits = searcher.search("How many drones does a colony have?")
    assert hits == sorted(hits, key=lambda hit: -hit.score)
    assert "3,000 drones" in hits[0].text
    for hit in hits:
        assert searcher.document_text(hit.document_id)[hit.start : hit.end] == hit.text


def test_a_number_counting_the_asked_noun_is_preferred(searcher):
    plain = Weights(answer_type=0.0, counted_noun=0.0)
    assert searcher.weights.counted_noun > plain.counted_noun
    hits = searcher.search("How many drones live in a colony?")
    assert "3,000 drones" in hits[0].text


def test_document_listing_and_details(searcher):
    assert searcher.list_documents() == [("bees.txt", "Bees make honey in hives."), ("guide/wasps.md", "Wasps")]
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
