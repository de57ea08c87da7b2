import json
from urllib.parse import unquote

from hypothesis import given, strategies as st

from bot.answering.answer import Answerer
from bot.answering.locate import answer_located
from bot.cli.main import main
from bot.cli.render import render_text
from bot.discord.render import answer_embed
from bot.types import Answer, Quote
from index.build import build_index
from index.sources.links import file_link, text_fragment
from tests.conftest import make_settings, write_corpus
from tests.pdfs import make_pdf


def test_a_short_quote_is_its_own_text_fragment_with_the_spec_s_syntax_characters_encoded():
    url = text_fragment("https://example.com/guide#top", "Tea, milk & sugar-free biscuits.")
    assert url == "https://example.com/guide#:~:text=Tea%2C%20milk%20%26%20sugar%2Dfree%20biscuits."


def test_a_long_or_multi_paragraph_quote_is_named_by_its_first_and_last_words():
    quote = "The lighthouse keeper lit the lamp at dusk.\n\nShips came in from the north every single morning."
    url = text_fragment("https://example.com/a", quote)
    assert url == ("https://example.com/a#:~:text=The%20lighthouse%20keeper%20lit%20the,"
                   "the%20north%20every%20single%20morning.")


_words = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=12)


@given(st.lists(st.lists(_words, min_size=1, max_size=30), min_size=1, max_size=4))
def test_text_fragments_name_the_quotes_own_words_and_never_leak_syntax_characters(paragraphs):
    quote = "\n\n".join(" ".join(words) for words in paragraphs)
    url = text_fragment("https://example.com/p", quote)
    directive = url.split("#:~:text=", 1)[1]
    parts = directive.split(",")
    assert 1 <= len(parts) <= 2 and all(part and not set(part) & set("-&, ") for part in parts)
    flat = " ".join(quote.split())
    if len(parts) == 1:
        assert unquote(parts[0]) == flat
    else:
        assert flat.startswith(unquote(parts[0])) and flat.endswith(unquote(parts[1]))


def test_file_links_open_at_the_lines_the_page_or_the_text():
    base = "https://git.example.com/team/docs/blob/main/"
    assert file_link(base, "guides/set up.md", "md", 12, 14, None, "x") == base + "guides/set%20up.md#L12-L14"
    assert file_link(base, "a.txt", "txt", 3, 3, None, "x") == base + "a.txt#L3"
    assert file_link(base, "r.pdf", "pdf", 2, 2, 3, "x") == base + "r.pdf#page=3"
    assert file_link(base, "p.html", "html", 9, 9, None, "Bees make honey.") == base + "p.html#:~:text=Bees%20make%20honey."
    assert file_link(base, "h.docx", "docx", 1, 1, None, "x") == base + "h.docx"


def test_link_base_turns_citations_into_links_in_json_text_and_discord(tmp_path, monkeypatch, capsys):
    write_corpus(tmp_path, {
        "guide.md": "# Guide\n\nThe lighthouse keeper lit the lamp at dusk every evening.\nShips came in at dawn.\n",
        "report.pdf": make_pdf([["Nothing on this page."], ["The harbour wall was rebuilt in 1912 with granite."]]),
    })
    settings = make_settings(tmp_path, link_base="https://files.example.com/docs")
    build_index(settings)
    answerer = Answerer(settings)
    lamp = answer_located(answerer, "Who lit the lamp at dusk?").quotes[0]
    assert lamp.url.startswith("https://files.example.com/docs/guide.md#L3")
    wall = answer_located(answerer, "When was the harbour wall rebuilt?").quotes[0]
    assert (wall.source, wall.page, wall.url) == ("report.pdf", 2, "https://files.example.com/docs/report.pdf#page=2")

    monkeypatch.setenv("VERBATIM_LINK_BASE", "https://files.example.com/docs")
    assert main(["ask", "--corpus", str(tmp_path / "corpus"), "--index", str(tmp_path / "index"), "--json",
                 "When was the harbour wall rebuilt?"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["quotes"][0]["url"] == "https://files.example.com/docs/report.pdf#page=2"

    answer = Answer("q", True, (wall,), 1.0, confidence=3.0)
    assert "\x1b]8;;" not in render_text(answer)  # not a terminal: the URL is printed plainly
    assert render_text(answer).endswith(f"report.pdf, page 2, line 1 <{wall.url}>\n")
    assert f"\x1b]8;;{wall.url}\x1b\\report.pdf, page 2, line 1\x1b]8;;\x1b\\" in render_text(answer, hyperlinks=True)
    embed = answer_embed(answer, 1.5)
    assert f"[report.pdf]({wall.url})" in embed.fields[0].value


def test_without_link_base_files_have_no_link_and_json_no_url():
    quote = Quote("A.", "a.txt", 0, 2, 1, 1.0)
    assert "url" not in Answer("q", True, (quote,), 1.0).to_json()["quotes"][0]
    assert render_text(Answer("q", True, (quote,), 1.0)) == "> A.\n  — a.txt:1\n"


def test_a_web_page_is_cited_by_its_url_and_line_never_url_colon_line():
    quote = Quote("A.", "http://127.0.0.1:8080/docs/a", 0, 2, 3, 1.0)
    assert quote.citation() == "http://127.0.0.1:8080/docs/a, line 3"
