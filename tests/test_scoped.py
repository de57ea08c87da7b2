import json

import pytest

from bot.answering.answer import Answerer, prefer
from bot.cli.main import main
from index.build import build_index
from index.errors import DocumentNotIndexed
from tests.conftest import make_settings, write_corpus

QUESTION = "How many eggs does the queen lay a day?"
# Forty hive reports answer the question head-on; one small note answers it in other words.
HIVES = {
    f"reports/hive_{i:02}.txt": (
        f"Hive {i} report.\n\nThe queen of hive {i} lays about {1000 + 10 * i} eggs a day in spring. "
        f"Worker bees of hive {i} gather nectar from clover and lime trees.\n"
    )
    for i in range(40)
}
NOTE = "Garden notes.\n\nOur old queen now manages only nine hundred eggs on a good day, Ann says.\n"


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    root = tmp_path_factory.mktemp("many")
    write_corpus(root, {**HIVES, "notes/garden.txt": NOTE})
    settings = make_settings(root)
    build_index(settings)
    return settings


@pytest.fixture(scope="module")
def answerer(many):
    return Answerer(many)


def test_a_scoped_question_is_answered_from_a_small_document_the_global_top_passages_miss(answerer):
    everywhere = answerer.searcher.search(QUESTION)
    assert "notes/garden.txt" not in {hit.source for hit in everywhere}  # filtering these would find nothing
    answer = answerer.answer(QUESTION, sources=["notes/garden.txt"])
    assert answer.answered and {quote.source for quote in answer.quotes} == {"notes/garden.txt"}
    assert "nine hundred eggs" in answer.quotes[0].text
    assert NOTE[answer.quotes[0].start : answer.quotes[0].end] == answer.quotes[0].text


@pytest.mark.parametrize("patterns, expected", [
    (["garden.txt"], {"notes/garden.txt"}),  # a bare file name matches in any folder
    (["reports/hive_0?.txt"], {f"reports/hive_0{i}.txt" for i in range(10)}),
    (["notes/*", "reports/hive_07.txt"], {"notes/garden.txt", "reports/hive_07.txt"}),
])
def test_patterns_choose_documents_by_name_or_fnmatch(answerer, patterns, expected):
    searcher = answerer.searcher
    assert searcher.matching_documents(patterns) == sorted(searcher.document_info(s)["id"] for s in expected)


def test_a_pattern_that_matches_nothing_is_a_clear_error(answerer):
    with pytest.raises(DocumentNotIndexed, match="no document matches 'garden.md'"):
        answerer.answer(QUESTION, sources=["notes/*", "garden.md"])


def test_preferred_sources_rank_first_without_changing_scores(answerer):
    hits = answerer.searcher.search(QUESTION)
    last = hits[-1]
    best_of_last = max((hit for hit in hits if hit.source == last.source), key=lambda hit: hit.score)
    preferred = prefer(hits, [last.source], boost=100.0)
    assert preferred[0] == best_of_last and sorted(preferred, key=lambda hit: -hit.score) == hits
    assert prefer(hits, [], boost=100.0) == hits
    plain = answerer.answer(QUESTION)
    runner_up = next(quote.source for quote in plain.quotes if quote.source != plain.quotes[0].source)
    answer = answerer.answer(QUESTION, prefer_sources=[runner_up])
    assert answer.quotes[0].source == runner_up


def test_cli_ask_source_restricts_and_keeps_the_json_shape(many, capsys):
    where = ["--corpus", str(many.corpus_dir), "--index", str(many.index_dir)]
    assert main([*where, "ask", QUESTION, "--json", "--source", "notes/*", "--source", "missing/*.txt"]) == 2
    assert capsys.readouterr().err.strip() == (
        "verbatim: error: no document matches 'missing/*.txt': give its path in the corpus as citations show it "
        "(a web page by its URL), or a pattern, e.g. 'guide.md', 'reports/*.pdf' or '*.docx'"
    )
    assert main([*where, "ask", QUESTION, "--json", "--source", "garden.txt"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert set(record) == {"question", "answered", "outcome", "quotes", "took_ms"}
    assert {quote["source"] for quote in record["quotes"]} == {"notes/garden.txt"}


def test_a_scope_larger_than_one_database_statement_or_vector_slice_is_searched_whole(answerer, monkeypatch):
    import index.search.hybrid

    searcher = answerer.searcher
    everything = searcher.matching_documents(["*"])
    assert len(everything) == 41
    whole = [(hit.source, hit.start, hit.score) for hit in searcher.search(QUESTION, everything)]
    monkeypatch.setattr(index.search.hybrid, "SQL_VARIABLES_AT_ONCE", 3)
    monkeypatch.setattr(index.search.hybrid, "VECTORS_AT_ONCE", 4)
    assert [(hit.source, hit.start, hit.score) for hit in searcher.search(QUESTION, everything)] == whole


def test_cli_chat_source_keeps_a_whole_conversation_in_the_documents(many, capsys, monkeypatch):
    where = ["--corpus", str(many.corpus_dir), "--index", str(many.index_dir)]
    monkeypatch.setattr("builtins.input", lambda prompt="": pytest.fail("asked before the patterns were checked"))
    assert main([*where, "chat", "--source", "nothing*"]) == 2
    assert "no document matches 'nothing*'" in capsys.readouterr().err
    lines = iter([QUESTION, "and in summer?", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert main([*where, "chat", "--source", "garden.txt"]) == 0
    citations = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  — ")]
    assert len(citations) >= 2 and all(line.startswith("  — notes/garden.txt") for line in citations)
