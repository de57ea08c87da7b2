import json
import shutil

import numpy as np
import pytest

from bot.answering.answer import Answerer, rank, with_selector
from bot.answering.selector import (
    MODEL_DIR, Calibration, Selector, SelectorUnavailable, context_before, pair_text, verify, write_checksum,
)
from index.build import build_index
from tests.conftest import make_settings, write_corpus

HANDBOOK = {
    "handbook.md": (
        "# Staff handbook\n\n"
        "Everyone gets 25 days of paid leave a year, plus public holidays. Leave is booked in the HR portal.\n\n"
        "Bicycles can be parked in the basement rack at the Amsterdam office. The rack is open from 7:00 to 20:00.\n\n"
        "Passwords must be at least 14 characters long and are changed every 90 days.\n\n"
        "The Amsterdam office is open Monday to Friday, 8:00 to 18:00.\n"
    )
}


@pytest.fixture(scope="module")
def selector():
    return Selector()


def test_the_selector_prefers_the_sentence_that_answers(selector):
    question = "How many troops would Pakistan send to Gaza?"
    answering = pair_text("Gaza", "Pakistan is willing to deploy 3,500 troops to the stabilization force in Gaza.")
    topical = pair_text("Gaza", "Pakistan's army has long been involved in the politics of Gaza and the region.")
    scores = selector.scores(question, [topical, answering])
    assert scores[1] > scores[0]


def test_context_is_the_end_of_the_text_before_a_sentence_from_a_word_start():
    before = "Intro.\n\n" + "abcdefg " * 40 + "Acme is a   bakery\nin Leeds. "
    context = context_before(before, 160)
    assert context.endswith("abcdefg Acme is a bakery in Leeds.")  # its whitespace read as single spaces
    assert len(context) < 160 and context.startswith("abcdefg ")  # cut at a word's start
    assert pair_text("Acme", "It was founded in 1931.", context) == f"Acme | {context} || It was founded in 1931."
    # The shipped selector reads no context: the title, then the sentence.
    assert pair_text("Acme", "It was founded in 1931.") == "Acme | It was founded in 1931."


def test_a_selector_file_that_does_not_match_its_checksum_is_refused(tmp_path):
    copy = tmp_path / "selector"
    shutil.copytree(MODEL_DIR, copy)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(SelectorUnavailable, match="checksum"):
        Selector(copy)
    verify(MODEL_DIR)  # the shipped files are intact


def test_a_missing_selector_file_is_a_clear_error(tmp_path):
    copy = tmp_path / "selector"
    shutil.copytree(MODEL_DIR, copy)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(SelectorUnavailable, match="cannot be read"):
        Selector(copy)


@pytest.fixture(scope="module")
def handbook(tmp_path_factory):
    root = tmp_path_factory.mktemp("handbook")
    write_corpus(root, HANDBOOK)
    settings = make_settings(root, selector=True, ranker=True, reader=False)
    build_index(settings)
    return Answerer(settings)


@pytest.mark.parametrize(
    "question, expected",
    [
        ("How many days of holiday do I get?", "25 days"),
        ("Where can I park my bicycle?", "basement rack"),
        ("How long must a password be?", "14 characters"),
        pytest.param("Where can I leave my bike?", "basement rack", marks=pytest.mark.xfail(
            strict=True, reason="known miss: 'leave' retrieves the paid-leave sentence and 'bike' never meets 'Bicycles'")),
    ],
)
def test_paraphrased_questions_are_answered(handbook, question, expected):
    answer = handbook.answer(question)
    assert answer.answered and expected in answer.quotes[0].text


_NEAR_MISS = "known miss: an on-topic question the handbook can't answer; the ranker and the selector both take {} for it"


@pytest.mark.parametrize("question", [
    "What is the wifi password?",  # answered with the password policy until the selector quantized per channel
    pytest.param("Is the London office open on Saturday?", marks=pytest.mark.xfail(
        strict=True, reason=_NEAR_MISS.format("the Amsterdam office hours"))),
    "Who won the 2022 football World Cup?",
    "Can I get my dentist covered?",
])
def test_near_misses_are_refused_and_name_the_closest_passage(handbook, question):
    answer = handbook.answer(question)
    assert not answer.answered and answer.quotes == ()
    assert answer.closest is not None and answer.closest.source == "handbook.md"


def test_the_ranker_alone_quotes_a_wrong_paraphrase_match(handbook):
    # "leave" meets the paid-leave sentence, and the ranker alone answers with it.
    alone = Answerer(handbook.settings.model_copy(update={"selector": False}))
    assert alone.answer("Where can I leave my bike?").answered


def test_a_wrong_paraphrase_match_is_refused(handbook):
    # Answered with the paid-leave sentence from the 6-layer selector (2026-12-03) until it was quantized per channel.
    assert not handbook.answer("Where can I leave my bike?").answered


def test_the_answer_flips_exactly_at_the_threshold(handbook):
    question = "How many days of holiday do I get?"
    sureness = handbook.answer(question).confidence
    at = Answerer(handbook.settings.model_copy(update={"selector_min_probability": sureness}))
    above = Answerer(handbook.settings.model_copy(update={"selector_min_probability": sureness + 1e-3}))
    assert at.answer(question).answered
    refused = above.answer(question)
    assert not refused.answered and refused.closest is not None


def test_the_selector_reorders_only_the_sentences_it_read():
    calibration = Calibration(logit_weight=2.0, refusal_weights=(1.0, 1.0, 0.5), refusal_bias=-1.0)
    scores = np.array([3.0, 2.5, 2.0, 1.0, 0.5])
    read = np.array([0, 1, 2])
    logits = np.array([-1.0, 2.0, 0.0])
    rescored = calibration.rescored(scores, read, logits)
    assert list(np.argsort(-rescored)) == [1, 2, 0, 3, 4]  # the unread keep their order, below every read one
    assert rescored[1] == 2.5 + 2.0 * (2.0 - -1.0)  # its logit's lead over the lowest read, weighed
    # The ranker's probability (as log-odds), the best read sentence's logit and its lead over the
    # other read ones raise the probability.
    expected = 1 / (1 + np.exp(-(0.0 + 2.0 + 0.5 * (2.0 - 0.0) - 1.0)))
    assert calibration.probability(0.5, logits, 1) == pytest.approx(expected)
    assert calibration.probability(0.5, logits, 2) < calibration.probability(0.5, logits, 1)
    assert calibration.probability(0.9, logits, 1) > calibration.probability(0.5, logits, 1)


def test_with_the_selector_on_the_ranker_still_scores_and_the_selector_lifts_its_best(handbook):
    assert handbook.ranker is not None and handbook.selector is not None
    question = "Where can I park my bicycle?"
    hits = handbook.searcher.search(question)
    judged = handbook.ranker.judge(question, hits)
    stacked = with_selector(handbook.selector, question, hits, judged, handbook.searcher.document_title, 2)
    read = sorted(np.argsort(-judged.scores, kind="stable")[:2])
    assert np.array_equal(stacked.scores, judged.scores)  # quotes still widen by the ranker's own scores
    assert [i for i, lift in enumerate(stacked.boosts) if lift is not None] == read
    assert min(stacked.boosts[i] for i in read) == 0.0 and 0.0 <= stacked.probability <= 1.0
    ranked = rank(question, hits, rank_scores=stacked.scores, boosts=stacked.boosts)
    assert {hit.sentence_id for hit in ranked[:2]} == {hits[i].sentence_id for i in read}


def test_no_candidates_leave_nothing_for_the_selector_to_read(selector):
    from bot.answering.ranker import Judgement

    empty = Judgement(np.zeros(0), 0.0)
    assert with_selector(selector, "Anything?", [], empty, lambda document_id: "", 3) is empty


def test_a_calibration_of_another_version_is_a_clear_error(tmp_path):
    copy = tmp_path / "selector"
    shutil.copytree(MODEL_DIR, copy)
    (copy / "calibration.json").write_text(json.dumps({"retrieval_weight": 2.0}))
    write_checksum(copy)
    with pytest.raises(SelectorUnavailable, match="calibrate-selector"):
        Selector(copy)
