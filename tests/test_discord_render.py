import re

from hypothesis import given, settings, strategies as st

from bot.discord.render import (
    EMBED_TOTAL_MAX, FIELD_VALUE_MAX, MESSAGE_MAX, answer_embed, block_quote, code_span, context_text, fit, safe,
    score_bar,
)
from bot.types import Answer, Quote
from tests.discord_fakes import check_embed, check_payload


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


def test_a_refusal_names_the_closest_passage_but_never_quotes_it():
    closest = Quote("Drones patrol the border.", "notes/border_report.txt", 10, 35, 4, 0.9)
    embed = answer_embed(Answer("How many troops?", False, (), 3.0, closest=closest), 1.52)
    assert "don't answer" in embed.description and "Closest passage" in embed.description
    assert "border\\_report.txt:4" in embed.description  # escaped: outside a code span, markdown is live
    assert not embed.fields and "Drones patrol" not in embed.description
    check_embed(embed)


def test_context_fits_a_message_and_keeps_the_quote_whole():
    document = "before " * 1000 + "THE QUOTE." + " after" * 1000
    start = document.index("THE QUOTE.")
    shown = context_text(Quote("THE QUOTE.", "d.txt", start, start + 10, 1, 1.0), document)
    assert len(shown) <= MESSAGE_MAX and "**THE QUOTE.**" in shown


def test_code_spans_show_text_literally_and_always_close():
    assert code_span("000_23546ede53cb2a58.txt") == "`000_23546ede53cb2a58.txt`"  # no "\_" inside code
    assert code_span("a`b.txt") == "`` a`b.txt ``"
    long = code_span("dir_" * 100 + ".txt", 60)
    assert len(long) <= 60 and long.startswith("`") and long.endswith("…`") and long.count("`") == 2


@given(st.text(alphabet="ab_*`~|>\\@ \n", max_size=300), st.integers(min_value=2, max_value=120))
def test_fit_never_cuts_an_escape_in_half(text, limit):
    shown = fit(text, limit)
    assert len(shown) <= limit
    # Whatever was kept is the escaped form of a prefix of the text, so no "\\" dangles to escape the "…".
    kept = shown[:-1] if shown.endswith("…") and shown != safe(text) else shown
    assert any(safe(text[:n]) == kept for n in range(len(text) + 1))


QUOTE_TEXT = st.lists(st.sampled_from(list("abc xyz.,*_`~|>@\n") + ["@everyone", "word ", "w" * 100]),
                      min_size=1, max_size=80).map("".join).filter(str.strip)
SOURCE = st.text(alphabet="abc_/-.*`", min_size=1, max_size=1500)


@settings(max_examples=150, deadline=None)
@given(
    question=st.text(min_size=1, max_size=600),
    quotes=st.lists(st.tuples(QUOTE_TEXT, SOURCE, st.floats(0, 3), st.one_of(st.none(), st.integers(1, 9999))),
                    min_size=1, max_size=30),
    answered=st.booleans(),
)
def test_every_answer_fits_discords_limits_with_each_quote_shown_whole(question, quotes, answered):
    quoted = tuple(Quote(text, source, 0, len(text), 10**6, score, page) for text, source, score, page in quotes)
    answer = Answer(question, answered, quoted if answered else (), 12.0, confidence=2.0,
                    closest=None if answered else quoted[0])
    embed = answer_embed(answer, 1.51)
    check_embed(embed)  # raises like Discord's 400 on any limit
    shown = [field.value.rsplit("\n", 1)[0] for field in embed.fields]
    assert all(value in {block_quote(q.text) for q in quoted} for value in shown)  # whole, never cut
    if not answered:
        assert not embed.fields
    elif not embed.fields:
        assert block_quote(quoted[0].text) in embed.description or "too long to show" in embed.description
    for q in quoted[:3]:
        context = context_text(q, "x" * 50 + q.text + "y" * 50)
        check_payload(context, [])
        assert "**" in context


def test_many_long_quotes_fill_at_most_25_fields_within_6000():
    answer = Answer("?" * 300, True, tuple(quote(f"Quote {i}. " + "w" * 200, source="s_" * 200) for i in range(40)), 9.0)
    embed = answer_embed(answer, 1.51)
    check_embed(embed)
    assert 0 < len(embed.fields) <= 25 and len(embed.title) <= 256
    assert [int(re.match(r"> Quote (\d+)\.", f.value).group(1)) for f in embed.fields] == list(range(len(embed.fields)))


def test_a_very_long_citation_still_fits_everywhere():
    source = "deep_dir_x/" * 180 + "file_name.txt"  # 1,993 characters, 2,354 once each "_" is escaped
    huge = Quote("x" * 5000, source, 0, 5000, 7, 1.6)
    check_embed(answer_embed(Answer("q", True, (huge,), 1.0), 1.51))
    check_embed(answer_embed(Answer("q", False, (), 1.0, closest=huge), 1.51))
    short = Quote("Short.", source, 0, 6, 1, 1.0)
    check_payload(context_text(short, "Short."), [])
    check_payload(context_text(huge, huge.text), [])


def test_the_score_bar_has_a_legend_where_it_is_shown():
    shown = answer_embed(Answer("q", True, (quote("A short answer."),), 5.0), 1.52)
    assert "▰" in shown.fields[0].value and shown.footer.text.endswith("· ▰ strength of the match")
    refusal = answer_embed(Answer("q", False, (), 5.0), 1.52)
    assert "▰" not in refusal.footer.text


def test_web_pages_are_cited_by_host_and_section_without_a_line_number():
    page = Quote("The ferry leaves at eleven.", "https://harbour.example.org/notes/ferry", 0, 27, 7, 1.5,
                 section="Timetable", url="https://harbour.example.org/notes/ferry#:~:text=ferry")
    embed = answer_embed(Answer("q", True, (page,), 5.0), 1.52)
    assert embed.fields[0].name == "harbour.example.org (Timetable)"
    assert "[ferry](https://harbour.example.org/notes/ferry#:~:text=ferry)" in embed.fields[0].value
    refusal = answer_embed(Answer("q", False, (), 5.0, closest=page), 1.52)
    assert refusal.description.endswith("Closest passage: harbour.example.org (Timetable)")
    unsure = answer_embed(Answer("q", False, (), 5.0, closest=page, not_sure=True), 1.52)
    assert "line 7" not in unsure.description + context_text(page, "The ferry leaves at eleven.")
    # A file keeps the command line's citation.
    assert answer_embed(Answer("q", True, (quote("Short."),), 5.0), 1.52).fields[0].name == "doc.txt:1"
