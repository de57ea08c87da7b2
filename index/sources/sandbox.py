"""Read and extract documents in worker processes with limits, so no file can hang or break a build.

Extraction runs libraries (pypdf, lxml, python-docx, docutils...) on strangers'
files: a crafted file can loop for minutes, fill memory, recurse past the
stack or hit a bug. Each worker process caps its own address space and, per
file, its CPU time; the parent also gives each file a wall-clock deadline. Any
failure of one file (an exception of any type, the CPU or wall limit, memory,
the worker dying) becomes a `Skipped` with its reason, a dead or suspect worker
is replaced, and the other files go on. Results come back as plain tuples.

A worker is a fresh interpreter (`python -I`), not a fork: it inherits none of
the caller's memory or threads (a process holding torch would leave no address
space under the limit), and never re-imports the caller's main module as
multiprocessing's spawn and forkserver do. It costs ~50 ms to start, plus each
extraction library's import the first time a file needs it.
"""

from __future__ import annotations

import math
import multiprocessing.connection
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from index.errors import Unreadable
from index.sources.load import CorpusFile, read_document
from index.types import Document, Section, Skipped

# The stable reasons (index.sources.load has the others) of a file whose extraction was stopped.
TIMED_OUT = "extraction took too long"
OUT_OF_MEMORY = "extraction ran out of memory"
FAILED = "extraction failed"

# Where the `index` package is: the worker imports this copy of it, whatever the caller's path.
_ROOT = Path(__file__).resolve().parents[2]
# A worker stuck off the CPU (a hung file system) is stopped after this many times the CPU limit, plus a margin.
WALL_PER_CPU = 3
WALL_MARGIN_SECONDS = 10
DETAIL_MAX_CHARS = 300
EXIT_GRACE_SECONDS = 5


@dataclass(frozen=True)
class ExtractLimits:
    """What one file's extraction may use: its size on disk, CPU seconds, address space and characters of text."""

    max_bytes: int
    seconds: float
    memory_mb: int
    max_chars: int

    @classmethod
    def from_settings(cls, settings) -> ExtractLimits:
        """The limits max_file_mb and the extract_* settings set."""
        from config.settings import size_in_bytes  # here: a worker process never loads the settings

        return cls(size_in_bytes(settings, "max_file_mb"), settings.extract_timeout_seconds,
                   settings.extract_max_memory_mb, settings.extract_max_chars)

    @property
    def wall_seconds(self) -> float:
        return WALL_PER_CPU * self.seconds + WALL_MARGIN_SECONDS


def read_files(files: Sequence[CorpusFile], limits: ExtractLimits, progress: Callable[[int], None] | None = None,
               workers: int | None = None) -> list[Document | Skipped]:
    """Each file's Document, or why it was skipped, in the order given; `progress` is told of bytes read."""
    if not files:
        return []
    workers = workers or min(len(files), default_workers())
    with Sandbox(limits, workers) as sandbox:
        return sandbox.read(files, progress or (lambda count: None))


def default_workers() -> int:
    """One worker per core this process may run on, at most 4 (each may use extract_max_memory_mb)."""
    return max(1, min(4, len(os.sched_getaffinity(0))))


class _Worker:
    """One worker process and the parent's end of its socket."""

    def __init__(self, memory_mb: int) -> None:
        ours, theirs = socket.socketpair()
        code = f"import sys; sys.path.insert(0, {str(_ROOT)!r}); from index.sources.sandbox import serve; serve({theirs.fileno()}, {memory_mb})"
        self.process = subprocess.Popen([sys.executable, "-I", "-c", code], pass_fds=(theirs.fileno(),),
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        theirs.close()  # so that the worker's death reads as end of file here
        self.connection = multiprocessing.connection.Connection(ours.detach())

    @property
    def exitcode(self) -> int | None:
        return self.process.poll()

    def stop(self, grace_seconds: float = 0) -> None:
        """End the worker; with `grace_seconds`, first let one that is already exiting finish (its exit code says why)."""
        if grace_seconds:
            try:
                self.process.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                pass
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.connection.close()


@dataclass
class _Task:
    worker: _Worker
    index: int
    file: CorpusFile
    deadline: float
    reported: int = 0


class Sandbox:
    """Up to `workers` worker processes, started as needed, replaced after a failure, stopped on close."""

    def __init__(self, limits: ExtractLimits, workers: int = 1) -> None:
        self.limits = limits
        self.workers = workers
        self._idle: list[_Worker] = []

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker."""
        while self._idle:
            self._idle.pop().stop()

    def read(self, files: Sequence[CorpusFile], progress: Callable[[int], None]) -> list[Document | Skipped]:
        """Each file's Document, or why it was skipped, in the order given."""
        results: list[Document | Skipped | None] = [None] * len(files)
        pending = deque(enumerate(files))
        running: dict[object, _Task] = {}
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    index, file = pending.popleft()
                    task = self._send(index, file)
                    running[task.worker.connection] = task
                timeout = max(0.0, min(task.deadline for task in running.values()) - time.monotonic())
                for connection in multiprocessing.connection.wait(list(running), timeout):
                    task = running[connection]
                    result = self._receive(task, progress)
                    if result is not None:
                        results[task.index] = result
                        del running[connection]
                for connection, task in list(running.items()):
                    if time.monotonic() > task.deadline:
                        task.worker.stop()
                        results[task.index] = Skipped(task.file.source, TIMED_OUT,
                                                      f"over {self.limits.wall_seconds:g} s of wall-clock time")
                        progress(task.file.size - task.reported)
                        del running[connection]
        finally:
            for task in running.values():  # interrupted: leave no worker behind
                task.worker.stop()
        return results  # type: ignore[return-value]  # every slot is filled

    def _send(self, index: int, file: CorpusFile) -> _Task:
        message = (str(file.path.absolute()), file.source, file.size, file.mtime_ns, self.limits.max_bytes,
                   self.limits.seconds, self.limits.max_chars)
        while self._idle:
            worker = self._idle.pop()
            try:
                worker.connection.send(message)
            except OSError:  # it died while idle (killed from outside): take another
                worker.stop()
                continue
            return _Task(worker, index, file, time.monotonic() + self.limits.wall_seconds)
        worker = _Worker(self.limits.memory_mb)
        try:
            worker.connection.send(message)
        except OSError:
            pass  # it died at once: its end of file is read next, and its exit code says why
        return _Task(worker, index, file, time.monotonic() + self.limits.wall_seconds)

    def _receive(self, task: _Task, progress: Callable[[int], None]) -> Document | Skipped | None:
        """The task's result once its worker sends it (None after a progress report), or why it died."""
        try:
            message = task.worker.connection.recv()
        except (EOFError, OSError):  # the worker died: its socket closes before its exit code is there
            task.worker.stop(grace_seconds=EXIT_GRACE_SECONDS)
            progress(task.file.size - task.reported)
            return Skipped(task.file.source, *self._death(task.worker.exitcode))
        if message[0] == "progress":
            task.reported += message[1]
            progress(message[1])
            return None
        if message[0] == "document":
            self._idle.append(task.worker)
            return _document(message[1])
        _, reason, detail, retire = message
        if retire:
            task.worker.stop()
        else:
            self._idle.append(task.worker)
        return Skipped(task.file.source, reason, detail)

    def _death(self, exitcode: int | None) -> tuple[str, str]:
        if exitcode == -signal.SIGXCPU:
            return TIMED_OUT, f"over {self.limits.seconds:g} s of CPU time"
        if exitcode is not None and exitcode < 0:
            name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else str(-exitcode)
            cause = "killed" if exitcode == -signal.SIGKILL else "crashed"
            return FAILED, f"the extracting process {cause} ({name}); out of memory?"
        return FAILED, f"the extracting process exited with code {exitcode}"


def _document(fields: tuple) -> Document:
    source, text, sha256, kind, page_starts, title, size, sections, mtime_ns = fields
    return Document(source, text, sha256, kind, tuple(page_starts), title, size,
                    tuple(Section(start, path) for start, path in sections), mtime_ns)


def serve(descriptor: int, memory_mb: int) -> None:
    """A worker's main loop: extract each file sent on the socket `descriptor`, within the limits,
    and send back plain data."""
    connection = multiprocessing.connection.Connection(descriptor)
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # a hard limit: extraction cannot lift it
    while True:
        try:
            path, source, size, mtime_ns, max_bytes, seconds, max_chars = connection.recv()
        except EOFError:
            return  # the parent closed its end
        _limit_cpu(seconds)
        try:
            document = read_document(CorpusFile(Path(path), source, size, mtime_ns), max_bytes,
                                     lambda count: connection.send(("progress", count)), max_chars)
            connection.send(("document", (document.source, document.text, document.sha256, document.kind,
                                          document.page_starts, document.title, document.size_bytes,
                                          tuple((s.start, s.path) for s in document.sections), document.mtime_ns)))
        except Unreadable as reason:
            connection.send(("skipped", reason.reason, reason.detail, False))
        except MemoryError:
            # Whatever was half-built is freed by now, but a fresh worker is the safe one for the next file.
            connection.send(("skipped", OUT_OF_MEMORY, f"over the {memory_mb} MB limit", True))
            return
        except RecursionError:
            connection.send(("skipped", FAILED, "nested too deeply to read (RecursionError)", True))
            return
        except Exception as error:  # a bug in an extractor, met on this file only
            detail = f"{type(error).__name__}: {error}"
            connection.send(("skipped", FAILED, detail[:DETAIL_MAX_CHARS], True))
            return


def _limit_cpu(seconds: float) -> None:
    """Let the next file use `seconds` more CPU time; past that the kernel ends the worker (SIGXCPU)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + seconds)
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))
