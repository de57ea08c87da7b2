"""A shelf's index rebuilt in a child process, its progress sent back through a queue.

The bot rebuilds while it answers. In a thread, the build's C extensions that keep the GIL
(creating the ONNX session, tokenizing) stall the event loop for 50-150 ms at a time
(bench/discord_load.py); a child process has a GIL of its own.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
from concurrent.futures import ProcessPoolExecutor

from config import Settings
from index.build import BuildSummary, Progress, build_index

# Spawned, not forked: the bot's threads (answering, discord.py) must not be copied mid-flight.
_CONTEXT = multiprocessing.get_context("spawn")
_progress_queue = None  # in the child: where progress goes (set by the pool's initializer)


class _QueuedProgress:
    """The child's Progress: every call is sent to the parent."""

    def start(self, label: str, total: int) -> None:
        _progress_queue.put(("start", label, total))

    def advance(self, count: int) -> None:
        _progress_queue.put(("advance", count))


def _remember_queue(progress_queue) -> None:
    global _progress_queue
    _progress_queue = progress_queue


def _build(settings: Settings, allow_drop_of: tuple[str, ...]) -> BuildSummary:
    return build_index(settings, _QueuedProgress(), allow_drop_of=allow_drop_of)


async def rebuild(settings: Settings, progress: Progress, poll_seconds: float, on_poll,
                  allow_drop_of: tuple[str, ...] = ()) -> BuildSummary:
    """Run `build_index(settings, allow_drop_of=...)` in a child process; `await on_poll()` every
    `poll_seconds` until it ends.

    Progress is replayed into `progress` before each poll; the build's errors are raised here.
    """
    progress_queue = _CONTEXT.Queue()
    pool = ProcessPoolExecutor(1, mp_context=_CONTEXT, initializer=_remember_queue, initargs=(progress_queue,))
    try:
        build = asyncio.wrap_future(pool.submit(_build, settings, tuple(allow_drop_of)))
        while not build.done():
            await asyncio.wait({build}, timeout=poll_seconds)
            _replay(progress_queue, progress)
            if not build.done():
                await on_poll()
        return build.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # the build is over: the child exits on its own


def _replay(progress_queue, progress: Progress) -> None:
    while True:
        try:
            event = progress_queue.get_nowait()
        except queue.Empty:
            return
        if event[0] == "start":
            progress.start(event[1], event[2])
        else:
            progress.advance(event[1])
