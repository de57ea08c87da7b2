from bot.discord_render import (
    EMBED_TOTAL_MAX, FIELD_VALUE_MAX, MESSAGE_MAX, answer_embed, block_quote, context_text, safe, score_bar,
)
from bot.types import Answer, Quote


def quote(text: str, score: float = 1.5, source: str = "doc.txt") -> Quote:
    return Quote(text, source, 0, len(text), 1, score)


def test_safe_escapes_markdown_and_mentions_but_keeps_links():
    shown = safe("**bold** @everyone <@123> https://example.com/a_b_c")
    assert "\\*\\*bold\\*\\*" in shown and "@\u200beveryone" in shown and "https://example.com/a_b_c" in shown


def test_block_quote_prefixes_every_line():
    assert block_quote("one\n\ntwo") == "> one\n>\n> two"


def test_quotes_are_never_cut_fewer_are_shown_instead():
    long = "word " * 300  # escaped and quoted, over a field's 1,024 characters
    answer = Answer("q", True, (quote("A short answer."), quote(long), quote("Another short one.")), 5.0)
    embed = answer_embed(answer, 1.52)
    assert [field.value.split("\n")[0] for field in embed.fields] == ["> A short answer.", "> Another short one."]
    assert all(len(field.value) <= FIELD_VALUE_MAX for field in embed.fields) and len(embed) <= EMBED_TOTAL_MAX


def test_a_best_quote_too_long_for_a_field_goes_in_the_description_whole():
    text = "A sentence of moderate length. " * 40
    embed = answer_embed(Answer("q", True, (quote(text),), 5.0), 1.52)
    assert not embed.fields and safe(text.strip()) in embed.description.replace("> ", "")


def test_refusal_embed_and_score_bar():
    embed = answer_embed(Answer("Where is it?", False, (), 3.0), 1.52)
    assert "don't answer" in embed.description
    assert score_bar(0.5) == "▰▱▱▱▱" and score_bar(9.0) == "▰▰▰▰▰"


def test_context_fits_a_message_and_keeps_the_quote_whole():
    document = "before " * 1000 + "THE QUOTE." + " after" * 1000
    start = document.index("THE QUOTE.")
    shown = context_text(Quote("THE QUOTE.", "d.txt", start, start + 10, 1, 1.0), document)
    assert len(shown) <= MESSAGE_MAX and "**THE QUOTE.**" in shown
