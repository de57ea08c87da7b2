"""What a moderator needs to improve a shelf, from its feedback store: the questions most often
left unanswered, the quotes voted down, and the documents those came from.

Read-only (`verbatim feedback report`, Discord's /report): a report never creates or changes the database.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter, defaultdict
from contextlib import closing
from pathlib import Path

from bot.shelves.feedback import FeedbackUnreadable
from bot.types import Quote

VOTES_QUERY = ("SELECT a.quotes, SUM(f.vote < 0), SUM(f.vote > 0) FROM feedback f "
               "JOIN answers a ON a.message_id = f.message_id GROUP BY a.message_id")


def feedback_report(path: Path, top: int = 10) -> dict:
    """The `top` questions most often refused or "not sure", quotes most voted down and their documents."""
    if not path.is_file():
        return {"unanswered": [], "down_voted": [], "documents": []}
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            unanswered = connection.execute(
                "SELECT question, outcome FROM unanswered ORDER BY created_at DESC").fetchall() if "unanswered" in tables else []
            votes = connection.execute(VOTES_QUERY).fetchall() if "feedback" in tables else []
    except sqlite3.DatabaseError as error:
        raise FeedbackUnreadable(f"cannot read the feedback database {path}: {error}") from None
    return {"unanswered": _unanswered(unanswered, top), **_down_voted(votes, top)}


def question_key(question: str) -> str:
    """Questions that differ only in case, spacing or final punctuation are one question."""
    return " ".join(question.casefold().split()).rstrip("?!. ")


def _unanswered(rows: list[tuple[str, str]], top: int) -> list[dict]:
    # Newest first, so each question is shown as it was last asked.
    counts: dict[str, Counter] = defaultdict(Counter)
    shown: dict[str, str] = {}
    for question, outcome in rows:
        key = question_key(question)
        shown.setdefault(key, question)
        counts[key][outcome] += 1
    ranked = sorted(counts, key=lambda key: -counts[key].total())[:top]
    return [{"question": shown[key], "times": counts[key].total(), "refused": counts[key]["refused"],
             "not_sure": counts[key]["not_sure"]} for key in ranked]


def _down_voted(rows: list[tuple[str, int, int]], top: int) -> dict:
    # A vote is on an answer: each of its quotes shares it.
    quotes: dict[tuple, dict] = {}
    documents: dict[str, dict] = {}
    for quotes_json, down, up in rows:
        for record in json.loads(quotes_json):
            quote = Quote(**record)
            entry = quotes.setdefault((quote.source, quote.start, quote.end), {
                "source": quote.source, "citation": quote.citation(), "text": quote.text, "down": 0, "up": 0})
            entry["down"] += down
            entry["up"] += up
            if down:
                document = documents.setdefault(quote.source, {"source": quote.source, "down": 0, "quotes": set()})
                document["down"] += down
                document["quotes"].add((quote.start, quote.end))
    worst = sorted((entry for entry in quotes.values() if entry["down"]), key=lambda e: (-e["down"], e["up"]))
    ranked = sorted(documents.values(), key=lambda d: (-d["down"], d["source"]))
    return {"down_voted": worst[:top],
            "documents": [{"source": d["source"], "down": d["down"], "quotes": len(d["quotes"])} for d in ranked[:top]]}


def report_lines(report: dict) -> list[str]:
    """The report as plain text, for the command line."""
    lines = ["Asked most often, not answered (add documents that answer them):"]
    lines += [f"  {item['times']}x {_one_line(item['question'])} ({_outcomes(item)})" for item in report["unanswered"]]
    lines += ["  none"] if not report["unanswered"] else []
    lines.append("Quotes voted down (check they are right, and what the question wanted):")
    lines += [f"  {item['down']}👎 {item['up']}👍 {item['citation']}: \"{_one_line(item['text'])}\""
              for item in report["down_voted"]]
    lines += ["  none"] if not report["down_voted"] else []
    lines.append("Documents those quotes came from (update or complete them):")
    lines += [f"  {item['down']}👎 over {item['quotes']} quote{'s' * (item['quotes'] != 1)}: {item['source']}"
              for item in report["documents"]]
    lines += ["  none"] if not report["documents"] else []
    return lines


def _outcomes(item: dict) -> str:
    parts = [f"{item['refused']} refused"] if item["refused"] else []
    return ", ".join(parts + ([f"{item['not_sure']} not sure"] if item["not_sure"] else []))


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def report_embed(report: dict, shelf: str):
    """The report as one Discord embed, within Discord's limits (lines that don't fit are left off)."""
    import discord

    from bot.discord.render import FIELD_VALUE_MAX, TITLE_MAX, clip, code_span, fit

    def field(lines: list[str]) -> str:
        kept = []
        for line in lines:
            if len("\n".join([*kept, line])) > FIELD_VALUE_MAX:
                break
            kept.append(line)
        return "\n".join(kept) or "None yet."

    embed = discord.Embed(title=clip(f"What the documents of shelf {shelf} are missing", TITLE_MAX),
                          colour=discord.Colour.blurple())
    embed.add_field(name="Asked most often, not answered", inline=False, value=field(
        [f"{item['times']}× {fit(_one_line(item['question']), 200)} ({_outcomes(item)})" for item in report["unanswered"]]))
    embed.add_field(name="Quotes voted down", inline=False, value=field(
        [f"{item['down']}👎 {item['up']}👍 {code_span(item['citation'], 120)} “{fit(_one_line(item['text']), 160)}”"
         for item in report["down_voted"]]))
    embed.add_field(name="Documents they came from", inline=False, value=field(
        [f"{item['down']}👎 {code_span(item['source'], 200)}" for item in report["documents"]]))
    embed.set_footer(text="Questions and votes are kept as long as feedback_retention_days; no one's id is shown.")
    return embed
