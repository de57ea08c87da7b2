"""Three outcomes (answered, not sure, refused), every quote past the gate, and a refusal that reads the shelf's size."""

import json
import math

import discord
import numpy as np
import pytest

from bot.answering.answer import Answerer, gated
from bot.answering.selector import SIZE_FEATURES, STACK_FEATURES, Calibration, stack_evidence
from bot.cli.render import NOT_SURE, render_text
from bot.discord.render import NOT_SURE_COLOUR, answer_embed
from bot.types import Answer, Quote
from index.search.hybrid import Hit
from tests.test_selector import handbook  # noqa: F401  (the fixture)

QUOTE = Quote("Leave is booked in the HR portal.", "handbook.md", 80, 113, 3, 1.2)


def _document_text(answerer: Answerer, quote: Quote) -> str:
    return (answerer.settings.corpus_dir / quote.source).read_text(encoding="utf-8")


def test_a_doubtful_answer_shows_its_closest_quote_verbatim_as_not_sure(handbook):
    question = "Who won the 2022 football World Cup?"
    refused = handbook.answer(question)
    assert refused.outcome == "refused" and not refused.not_sure
    # A band reaching down to the question's own probability: the same passage, now shown as not sure.
    band = handbook.settings.model_copy(update={"selector_not_sure_probability": refused.confidence})
    doubtful = Answerer(band).answer(question)
    assert doubtful.outcome == "not_sure" and not doubtful.answered and doubtful.quotes == ()
    closest = doubtful.closest
    assert closest == refused.closest
    assert _document_text(handbook, closest)[closest.start : closest.end] == closest.text
    record = json.loads(json.dumps(doubtful.to_json()))
    assert record["outcome"] == "not_sure" and record["answered"] is False and record["closest"]["text"] == closest.text
    # Just above it: a plain refusal again.
    above = handbook.settings.model_copy(update={"selector_not_sure_probability": refused.confidence + 1e-6})
    assert Answerer(above).answer(question).outcome == "refused"


def test_the_json_outcome_agrees_with_answered(handbook):
    answered = handbook.answer("How many days of holiday do I get?")
    assert answered.to_json()["outcome"] == "answered" and answered.to_json()["answered"] is True
    refused = Answer("q", False, (), 1.0)
    assert refused.to_json()["outcome"] == "refused" and refused.to_json()["answered"] is False


def test_not_sure_is_rendered_under_a_caveat_never_as_an_answer():
    answer = Answer("How do I book leave?", False, (), 4.0, 0.7, QUOTE, not_sure=True)
    text = render_text(answer)
    assert text.startswith(NOT_SURE) and f"> {QUOTE.text}" in text and QUOTE.citation() in text
    embed = answer_embed(answer, confident_above=0.9)
    assert embed.colour == NOT_SURE_COLOUR
    assert embed.colour not in (discord.Colour.green(), discord.Colour.gold())
    assert NOT_SURE in embed.description and QUOTE.text in embed.description
    # A refusal shows no quote, and says nothing was quoted.
    refused = answer_embed(Answer("q", False, (), 4.0, 0.1, QUOTE), confident_above=0.9)
    assert QUOTE.text not in refused.description and "word for word" not in refused.footer.text


def test_not_sure_exits_1_and_says_so_in_json(handbook, monkeypatch, capsys):
    from bot.cli.main import main

    settings = handbook.settings
    monkeypatch.setenv("VERBATIM_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("VERBATIM_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("VERBATIM_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setenv("VERBATIM_SELECTOR_NOT_SURE_PROBABILITY", "0")
    assert main(["ask", "--json", "Who won the 2022 football World Cup?"]) == 1
    record = json.loads(capsys.readouterr().out)
    assert record["outcome"] == "not_sure" and record["closest"]["source"] == "handbook.md"


def _hit(sentence_id: int) -> Hit:
    return Hit("a.txt", 0, 1, 1, f"Sentence {sentence_id}.", 1.0, 0, sentence_id, 0)


def test_every_quote_after_the_first_must_pass_the_gate():
    hits = [_hit(n) for n in range(4)]
    probabilities = (0.95, None, 0.4, 0.9)  # the second was never read by the selector
    ranked = [hits[2], hits[0], hits[1], hits[3]]
    kept = gated(ranked, hits, probabilities, 0.8)
    assert [hit.sentence_id for hit in kept] == [2, 0, 3]  # the first stays: the refusal judged it already


def test_every_answered_quote_passes_the_gate_on_a_real_shelf(handbook):
    question = "Where can I park my bicycle?"
    answer = handbook.answer(question, top=3)
    assert answer.answered
    hits = handbook.searcher.search(question)
    from bot.answering.answer import with_selector

    judged = with_selector(handbook.selector, question, hits, handbook.ranker.judge(question, hits),
                           handbook.searcher.document_title, handbook.settings.selector_candidates,
                           handbook.searcher.manifest.passages)
    own = {hit.sentence_id: p for hit, p in zip(hits, judged.probabilities)}
    threshold = handbook.settings.selector_min_probability
    by_text = {hit.text: hit.sentence_id for hit in hits}
    for quote in answer.quotes[1:]:
        anchors = [sid for text, sid in by_text.items() if text in quote.text]
        assert any((own.get(sid) or 0.0) >= threshold for sid in anchors)


def test_the_shelf_size_enters_the_refusal_only_through_its_features():
    logits = np.array([2.0, 0.5, -1.0])
    features = (*STACK_FEATURES, *SIZE_FEATURES)
    evidence = stack_evidence(0.7, logits, 0, 1000, features)
    base = stack_evidence(0.7, logits, 0)
    size = math.log(1000)
    assert np.allclose(evidence[: len(STACK_FEATURES)], base)
    assert evidence[len(STACK_FEATURES)] == pytest.approx(size)
    assert np.allclose(evidence[len(STACK_FEATURES) + 1 :], base * size)
    plain = Calibration(1.0, (1.0, 1.0, 0.5), -1.0)
    assert plain.probability(0.7, logits, 0, 10) == plain.probability(0.7, logits, 0, 10_000)
    # A weight that trusts the ranker less on bigger shelves: the same evidence is less sure there.
    sized = Calibration(1.0, (1.0, 1.0, 0.5, 0.0, -0.1, 0.0, 0.0), -1.0, features)
    assert sized.probability(0.9, logits, 0, 10_000) < sized.probability(0.9, logits, 0, 10)
