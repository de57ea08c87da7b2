"""50 concurrent /ask over 3 shelves (3 servers) while one shelf is reindexed, through the bot's real CommandTree.

Each shelf is a tiny corpus of SQuAD articles of its own; a monitor task measures
event-loop lag throughout. Writes bench/results/discord.json and discord.md.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path

import discord
from common import CACHE, machine, percentile, require_data, write_results

from bot.cli.evaluation import load_eval_set
from bot.discord.bot import VerbatimBot
from bot.shelves.shelves import configured_shelves
from config import load_settings
from index.build import build_index
from tests.discord_fakes import FakeInteraction, dispatch, offline

CONCURRENT = 50
SHELVES = 3
ARTICLES_PER_SHELF = 2
TICK = 0.005
LAG_LIMIT_MS = 100


def write_shelves(root: Path) -> tuple[dict, list[tuple[int, str, str]], str]:
    """Three corpora of two SQuAD articles each; (server, shelf, question) taken from each in turn; and an
    article more, for the reindex to add."""
    (qa_path,) = require_data("squad2-dev-a.json")
    eval_set = load_eval_set(qa_path)
    titles = list(eval_set.articles)[: SHELVES * ARTICLES_PER_SHELF + 1]
    shelves, per_shelf = {}, []
    for number in range(SHELVES):
        name = f"shelf{number + 1}"
        corpus = root / name
        corpus.mkdir()
        mine = titles[number * ARTICLES_PER_SHELF : (number + 1) * ARTICLES_PER_SHELF]
        for title in mine:
            (corpus / f"{title}.txt").write_text(eval_set.articles[title], encoding="utf-8")
        shelves[name] = {"corpus_dir": str(corpus), "index_dir": str(root / f"{name}-index"), "guild_ids": [number + 1]}
        per_shelf.append([(number + 1, name, q.question) for q in eval_set.questions if q.answers and q.article in mine])
    asked = [item for turn in zip(*per_shelf) for item in turn][:CONCURRENT]
    return shelves, asked, eval_set.articles[titles[-1]]


async def run(settings, asked: list[tuple[int, str, str]], added: Path, article: str) -> dict:
    bot = await offline(VerbatimBot(settings))
    await bot.prepare()  # as setup_hook does when the bot starts
    lags: list[float] = []
    spikes: list[tuple[float, float]] = []  # (seconds since the start, lag) of the longest stalls
    done = asyncio.Event()

    async def monitor() -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        while not done.is_set():
            before = loop.time()
            await asyncio.sleep(TICK)
            lags.append(loop.time() - before - TICK)
            spikes.append((before - began, lags[-1]))

    async def one(user: int, server: int, shelf: str, question: str) -> dict:
        interaction = FakeInteraction(bot, "ask", {"question": question}, user_id=10_000 + user, guild_id=server)
        started = time.perf_counter()
        await dispatch(bot, interaction)
        took = (time.perf_counter() - started) * 1000
        reply = interaction.followup.sent[0] if interaction.followup.sent else None
        sources = [field.name.split(":")[0] for field in reply.embed.fields] if reply and reply.embed else []
        own = {path.name for path in Path(settings.shelves[shelf].corpus_dir).iterdir()}
        return {"ms": took, "replied": reply is not None and reply.embed is not None, "answered": bool(sources),
                "own_shelf_only": all(source in own for source in sources)}

    async def reindex() -> dict:
        interaction = FakeInteraction(bot, "reindex", {}, user_id=1, guild_id=1,
                                      permissions=discord.Permissions(manage_guild=True))
        started = time.perf_counter()
        await dispatch(bot, interaction)
        return {"s": time.perf_counter() - started, "report": interaction.edits[-1] if interaction.edits else None}

    added.write_text(article, encoding="utf-8")  # a whole article for the reindex to embed
    watcher = asyncio.create_task(monitor())
    started = time.perf_counter()
    rebuild = asyncio.create_task(reindex())
    replies = await asyncio.gather(*(one(user, *item) for user, item in enumerate(asked)))
    wall = time.perf_counter() - started
    rebuilt = await rebuild
    done.set()
    await watcher
    for shelf in bot.shelves.values():  # the offline client has no gateway to close
        shelf.feedback.close()
        shelf.ledger.close()
    return {"replies": replies, "wall_s": wall, "reindex": rebuilt,
            "spikes": sorted(spikes, key=lambda spike: -spike[1])[:3],
            "lag_max_ms": max(lags) * 1000, "lag_p99_ms": percentile(lags, 99) * 1000}


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        shelves, asked, article = write_shelves(scratch)
        # A throwaway embedding cache: the reindex embeds its new article for real (the ONNX export is reused).
        settings = load_settings(corpus_dir=scratch / "shelf1", cache_dir=CACHE, shelves=shelves,
                                 embedding_cache=scratch / "embeddings.sqlite",
                                 feedback_db=scratch / "feedback.sqlite", discord_cooldown_rate=CONCURRENT)
        for shelf in configured_shelves(settings):
            build_index(shelf.settings)
        result = asyncio.run(run(settings, asked, scratch / "shelf1" / "added.txt", article))
    replies = result["replies"]
    latencies = [reply["ms"] for reply in replies]
    summary = {
        "machine": machine(), "date": time.strftime("%Y-%m-%d"), "concurrent_asks": len(replies), "shelves": SHELVES,
        "replied": sum(reply["replied"] for reply in replies),
        "answered_with_quotes": sum(reply["answered"] for reply in replies),
        "quotes_from_another_shelf": sum(not reply["own_shelf_only"] for reply in replies),
        "latency_ms": {"p50": round(percentile(latencies, 50), 1), "p95": round(percentile(latencies, 95), 1),
                       "max": round(max(latencies), 1)},
        "wall_s": round(result["wall_s"], 2),
        "reindex": {"shelf": "shelf1", "seconds": round(result["reindex"]["s"], 2), "report": result["reindex"]["report"]},
        "loop_lag_ms": {"max": round(result["lag_max_ms"], 1), "p99": round(result["lag_p99_ms"], 1),
                        "longest_at_s": [[round(at, 3), round(lag * 1000, 1)] for at, lag in result["spikes"]],
                        "tick_ms": TICK * 1000, "limit": LAG_LIMIT_MS},
    }
    write_results("discord.json", [json.dumps(summary, indent=2)])
    lines = [
        f"Measured by `make bench-discord` on {summary['machine']}, {summary['date']}: {len(replies)} concurrent `/ask` "
        f"interactions (one user each) spread over {SHELVES} shelves in {SHELVES} servers ({ARTICLES_PER_SHELF} SQuAD "
        "articles each), while `/reindex` rebuilds the first shelf, all dispatched through the bot's real "
        "`CommandTree`; only Discord's HTTP edge is faked.",
        "",
        f"- replied: **{summary['replied']} of {len(replies)}** ({summary['answered_with_quotes']} with quotes, "
        f"{summary['quotes_from_another_shelf']} quoting another shelf), all in {summary['wall_s']:.2f} s",
        f"- interaction to reply: p50 {summary['latency_ms']['p50']:.0f} ms, p95 **{summary['latency_ms']['p95']:.0f} ms**, "
        f"max {summary['latency_ms']['max']:.0f} ms",
        f"- the reindex of shelf1 meanwhile: {summary['reindex']['seconds']:.2f} s, \"{summary['reindex']['report']}\"",
        f"- event-loop lag (monitor task, {TICK * 1000:.0f} ms ticks): max **{summary['loop_lag_ms']['max']:.1f} ms**, "
        f"p99 {summary['loop_lag_ms']['p99']:.1f} ms (limit {LAG_LIMIT_MS} ms)",
    ]
    write_results("discord.md", lines)


if __name__ == "__main__":
    main()
