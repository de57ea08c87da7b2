"""50 concurrent /ask interactions against a 1,000-document index, through the bot's real CommandTree.

A monitor task measures event-loop lag throughout. Writes bench/results/discord.md.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from common import CACHE, DATA, machine, percentile, write_results
from corpus1000 import write_1000

from bot.answer import Answerer
from bot.discord_bot import VerbatimBot
from bot.evaluation import load_eval_set
from config import load_settings
from index.build import build_index
from tests.discord_fakes import FakeInteraction, dispatch, offline

CONCURRENT = 50
TICK = 0.005


async def run(settings) -> dict:
    bot = await offline(VerbatimBot(settings, Answerer(settings)))
    questions = [q.question for q in load_eval_set(DATA / "squad2-dev-a.json").questions if q.answers][:CONCURRENT]
    lags: list[float] = []
    done = asyncio.Event()

    async def monitor() -> None:
        loop = asyncio.get_running_loop()
        while not done.is_set():
            before = loop.time()
            await asyncio.sleep(TICK)
            lags.append(loop.time() - before - TICK)

    async def one(user: int, question: str) -> float:
        interaction = FakeInteraction(bot, "ask", {"question": question}, user_id=10_000 + user)
        started = time.perf_counter()
        await dispatch(bot, interaction)
        assert interaction.followup.sent and interaction.followup.sent[0].embed is not None, interaction.all_sent
        return (time.perf_counter() - started) * 1000

    watcher = asyncio.create_task(monitor())
    started = time.perf_counter()
    replies = await asyncio.gather(*(one(user, question) for user, question in enumerate(questions)))
    wall = time.perf_counter() - started
    done.set()
    await watcher
    bot.feedback.close()
    return {"replies": replies, "lag_max_ms": max(lags) * 1000, "lag_p99_ms": percentile(lags, 99) * 1000, "wall_s": wall}


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        write_1000(scratch / "corpus")
        settings = load_settings(corpus_dir=scratch / "corpus", index_dir=scratch / "index",
                                 cache_dir=CACHE,
                                 feedback_db=scratch / "feedback.sqlite")
        build_index(settings)
        result = asyncio.run(run(settings))
    replies = result["replies"]
    lines = [
        f"Measured by `make bench-discord` on {machine()}, {time.strftime('%Y-%m-%d')}: {CONCURRENT} concurrent `/ask` "
        "interactions (50 users) dispatched through the bot's real `CommandTree` against a 1,000-document index; "
        "only Discord's HTTP edge is faked.",
        "",
        f"- answered: **{len(replies)} of {CONCURRENT}**, all in {result['wall_s']:.2f} s",
        f"- interaction to reply: p50 {percentile(replies, 50):.0f} ms, p95 **{percentile(replies, 95):.0f} ms**, "
        f"max {max(replies):.0f} ms",
        f"- event-loop lag (monitor task, {TICK * 1000:.0f} ms ticks): max **{result['lag_max_ms']:.1f} ms**, "
        f"p99 {result['lag_p99_ms']:.1f} ms",
    ]
    write_results("discord.md", lines)


if __name__ == "__main__":
    main()
