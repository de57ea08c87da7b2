import json

from bot.cli.render import render_json, render_text
from bot.types import Answer, Quote


def test_a_file_name_with_a_newline_or_escape_keeps_the_citation_on_one_line_but_json_exact():
    source = "notes\n  — fake.txt:1\x1b[2J.txt"
    quote = Quote("Alpha.", source, 0, 6, 1, 1.0)
    assert quote.citation() == "notes\\n  — fake.txt:1\\x1b[2J.txt:1"
    assert render_text(Answer("q", True, (quote,), 1.0)) == "> Alpha.\n  — notes\\n  — fake.txt:1\\x1b[2J.txt:1\n"
    assert Quote("A.", "r\tp.pdf", 0, 2, 3, 1.0, page=2).citation() == "r\\tp.pdf, page 2, line 3"
    assert json.loads(render_json(Answer("q", True, (quote,), 1.0)))["quotes"][0]["source"] == source
