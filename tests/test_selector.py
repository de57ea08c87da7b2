import math
import shutil

import pytest

from bot.answer import Answerer
from bot.selector import MODEL_DIR, Selector, SelectorUnavailable, pair_text, verify
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
    settings = make_settings(root, selector=True)
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


@pytest.mark.parametrize(
    "question", ["What is the wifi password?", "Is the London office open on Saturday?", "Who won the 2022 football World Cup?"]
)
def test_near_misses_are_refused_and_name_the_closest_passage(handbook, question):
    answer = handbook.answer(question)
    assert not answer.answered and answer.quotes == ()
    assert answer.closest is not None and answer.closest.source == "handbook.md"


def test_the_answer_flips_exactly_at_the_threshold(handbook):
    question = "How many days of holiday do I get?"
    sureness = handbook.answer(question).confidence
    at = Answerer(handbook.settings.model_copy(update={"selector_min_probability": sureness}))
    above = Answerer(handbook.settings.model_copy(update={"selector_min_probability": sureness + 1e-3}))
    assert at.answer(question).answered
    refused = above.answer(question)
    assert not refused.answered and refused.closest is not None


def test_the_confidence_is_the_calibrated_probability_of_the_best_quote():
    from bot.answer import confidence
    from bot.selector import Calibration
    from index.search import Hit

    calibration = Calibration(retrieval_weight=1.0, coverage_weight=2.0, scale=1.5, offset=-3.0)
    best = Hit("a.txt", 0, 5, 1, "Hello", score=2.0, passage_id=0, sentence_id=0, document_id=0, coverage=0.5)
    worse = Hit("a.txt", 6, 9, 1, "Bye", score=-1.0, passage_id=0, sentence_id=1, document_id=0, coverage=1.0)

    class Fitted:
        pass

    fitted = Fitted()
    fitted.calibration = calibration
    expected = 1 / (1 + math.exp(-(1.5 * (2.0 + 2.0 * 0.5) - 3.0)))
    assert confidence([best, worse], fitted) == pytest.approx(expected)
    assert confidence([], fitted) == 0.0
    assert calibration.probability(3.0, 0.0) > calibration.probability(2.0, 0.0)
