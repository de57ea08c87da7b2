import copy
import json
import sqlite3

from bot.cli.evaluation import load_eval_set, evaluate
from tests.conftest import ANSWER_ALWAYS, SHARED_CACHE, make_settings

SQUAD = {
    "version": "v2.0",
    "data": [
        {"title": "Bees", "paragraphs": [{"context": "Honey bees live in hives. A colony has one queen bee.", "qas": [
            {"question": "How many queens does a colony have?", "answers": [{"text": "one queen", "answer_start": 33}], "is_impossible": False},
            {"question": "What colour is a bee's tongue?", "answers": [], "is_impossible": True},
        ]}]},
        {"title": "Volcanoes", "paragraphs": [{"context": "Mount Etna is an active volcano in Sicily. It erupts often.", "qas": [
            {"question": "Where is Mount Etna?", "answers": [{"text": "Sicily", "answer_start": 35}], "is_impossible": False},
        ]}]},
    ],
}


def test_squad_file_is_read_into_articles_and_questions(tmp_path):
    path = tmp_path / "qa.json"
    path.write_text(json.dumps(SQUAD))
    eval_set = load_eval_set(path)
    assert list(eval_set.articles) == ["Bees", "Volcanoes"]
    assert [q.answers for q in eval_set.questions] == [("one queen",), (), ("Sicily",)]


def test_evaluate_reports_every_figure(tmp_path):
    path = tmp_path / "qa.json"
    path.write_text(json.dumps(SQUAD))
    report = evaluate(load_eval_set(path), make_settings(tmp_path, **ANSWER_ALWAYS), holdout_articles=1)
    assert report.questions == 3
    assert report.quote_hit_at_1 == 1.0 and report.answered_rate == 1.0
    assert report.refused_rate_out_of_corpus is not None and report.refused_rate_unanswerable is not None
    assert report.latency_ms_p50 > 0 and report.build_seconds > 0 and report.peak_rss_mb > 0


def test_jsonl_questions_use_the_given_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "etna.txt").write_text("Mount Etna is an active volcano in Sicily.")
    path = tmp_path / "qa.jsonl"
    path.write_text('{"question": "Where is Mount Etna?", "answers": ["Sicily"]}\n')
    report = evaluate(load_eval_set(path), make_settings(tmp_path, **ANSWER_ALWAYS))
    assert report.questions == 1 and report.quote_hit_at_1 == 1.0


def _cached_texts() -> int:
    path = SHARED_CACHE / "embeddings.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT count(*) FROM vectors").fetchone()[0]


def test_eval_leaves_the_real_embedding_cache_alone_but_reuses_the_onnx_export(tmp_path):
    squad = copy.deepcopy(SQUAD)  # texts no other test has embedded
    squad["data"][0]["paragraphs"][0]["context"] += " Drones never sting, and they leave the hive in summer."
    path = tmp_path / "qa.json"
    path.write_text(json.dumps(squad))
    texts, exports = _cached_texts(), sorted(SHARED_CACHE.glob("onnx-*"))
    evaluate(load_eval_set(path), make_settings(tmp_path, **ANSWER_ALWAYS))
    assert _cached_texts() == texts
    assert sorted(SHARED_CACHE.glob("onnx-*")) == (exports or sorted(SHARED_CACHE.glob("onnx-*")))
