import json

from bot.cli.render import REFUSAL, render_json, render_text
from bot.types import Answer, Quote


def test_text_is_block_quotes_with_citations_and_refusal_is_plain():
    answer = Answer("q", True, (Quote("Line one.\nLine two.", "a.txt", 5, 24, 3, 1.0),
                                Quote("Paged.", "r.pdf", 0, 6, 2, 0.9, page=4)), 1.0)
    assert render_text(answer) == "> Line one.\n> Line two.\n  — a.txt:3\n\n> Paged.\n  — r.pdf, page 4, line 2\n"
    assert render_text(Answer("q", False, (), 1.0)) == REFUSAL + "\n"


def test_json_keeps_the_contract_and_adds_page_only_for_paged_documents():
    answer = Answer("q", True, (Quote("A.", "a.txt", 0, 2, 1, 1.0), Quote("B.", "r.pdf", 0, 2, 1, 1.0, page=2)), 1.23456)
    record = json.loads(render_json(answer))
    assert record["took_ms"] == 1.235 and set(record["quotes"][0]) == {"text", "source", "start", "end", "line", "score"}
    assert record["quotes"][1]["page"] == 2
