"""Distributed builds on Ray: documents are read and new texts embedded by Ray tasks on the workers.

The driver (the `index build` process) keeps everything else: it decides what
is new by content hash, consults the embedding cache first (only texts it
lacks go to the cluster), and writes and publishes the generation. The ONNX
model is put in Ray's object store once; each worker process loads it into an
onnxruntime session once and keeps it for every later task. A task whose
worker dies is run again elsewhere (`TASK_OPTIONS`); a build that fails for
good raises, and the live index is left as it was.

Ray is imported only here, and only when a cluster is used. Workers must see
the corpus at the same path as the driver (a local instance always does; a
cluster needs it on a shared file system) and run the same Verbatim install.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from index.embedding.embed import FILES, OnnxEmbedder, embed_in_batches
from index.errors import ClusterUnavailable
from index.sources.load import CorpusFile
from index.sources.sandbox import ExtractLimits, read_files
from index.types import Document, Skipped

INSTALL_HINT = "install the cluster extra: pip install '.[cluster]'"
# A task whose worker process dies (killed, out of memory, node lost) is retried this many times.
TASK_OPTIONS = {"max_retries": 3, "num_cpus": 1}
# How long to wait for a cluster's head to answer before giving up.
CONNECT_SECONDS = 5
# Texts per embedding task: big enough to amortise a task (~1 s of work), small enough to balance.
TEXTS_PER_TASK = 256
# Bytes of files per reading task.
BYTES_PER_TASK = 4_000_000

# Per worker process: the embedder made from each model sent (by checksum), loaded once.
_WORKER_EMBEDDERS: dict[str, OnnxEmbedder] = {}


@contextmanager
def connect(settings) -> Iterator[LazyCluster]:
    """The Ray cluster `settings.build_cluster` names ("auto": a local instance on every core),
    connected at its first use: a build with nothing new to read or embed starts none."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # read by Ray at import and start: no usage reports
    if settings.build_cluster == "auto":
        # A private instance keeps Ray's token authentication, with a token of its own held in
        # the environment its processes inherit (read at import): none is written to ~/.ray.
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
    try:
        import ray
    except ImportError:
        raise ClusterUnavailable(INSTALL_HINT) from None
    lazy = LazyCluster(ray, settings)
    try:
        yield lazy
    finally:
        lazy.close()


class LazyCluster:
    """A Cluster that connects (or starts a local instance) when it is first asked to work."""

    def __init__(self, ray, settings) -> None:
        self._ray, self._settings = ray, settings
        self._cluster: Cluster | None = None
        self._started = False

    def read_documents(self, files: Sequence[CorpusFile], limits: ExtractLimits,
                       progress: Callable[[int], None]) -> list[Document | Skipped]:
        """As Cluster.read_documents, connecting first."""
        return self._connected().read_documents(files, limits, progress)

    def embed(self, model_dir: Path, batch_chars: int, texts: Sequence[str],
              progress: Callable[[int], None]) -> np.ndarray:
        """As Cluster.embed, connecting first."""
        return self._connected().embed(model_dir, batch_chars, texts, progress)

    def close(self) -> None:
        """Shut down the instance this build started, if it started one."""
        if self._started:
            self._ray.shutdown()

    def _connected(self) -> Cluster:
        if self._cluster is None:
            self._started = _start(self._ray, self._settings)
            self._cluster = Cluster(self._ray)
        return self._cluster


def _start(ray, settings) -> bool:
    """Connect Ray as `settings` say; False when a caller (a test, a notebook) had connected already."""
    if ray.is_initialized():
        return False
    options = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR",
               "configure_logging": False}
    try:
        if settings.build_cluster == "auto":
            # Ray's sessions, sockets and spilled objects go under the cache, not /tmp/ray.
            temp = (settings.cache_path / "ray").absolute()
            temp.mkdir(parents=True, exist_ok=True)
            ray.init(num_cpus=os.cpu_count(), _temp_dir=str(temp), _node_ip_address="127.0.0.1", **options)
        else:
            _check_reachable(settings.build_cluster)
            ray.init(address=settings.build_cluster, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise ClusterUnavailable(f"cannot connect to the Ray cluster {settings.build_cluster!r}: {error}") from None
    return True


def _check_reachable(address: str) -> None:
    # Ray retries an unreachable head for ever; a build should fail fast and say so.
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except (OSError, ValueError) as error:
        raise ClusterUnavailable(
            f"cannot reach the Ray cluster at {address!r} ({error or 'expected HOST:PORT'}); "
            "check the address, or build without --cluster"
        ) from None


def remote(ray, function: Callable):
    """`function` as a Ray task that is retried on another worker when its worker process dies."""
    return ray.remote(**TASK_OPTIONS)(function)


class Cluster:
    """A connected Ray cluster that reads documents and embeds texts for one build."""

    def __init__(self, ray) -> None:
        self._ray = ray
        self.workers = int(ray.cluster_resources().get("CPU", 1))

    def read_documents(
        self, files: Sequence[CorpusFile], limits: ExtractLimits, progress: Callable[[int], None]
    ) -> list[Document | Skipped]:
        """Each file's Document, or why it was skipped, in the order given (read as a local build
        reads them: in a worker process with `limits`, index/sources/sandbox.py)."""
        groups, group, size = [], [], 0
        for file in files:
            group.append(file)
            size += file.size
            if size >= BYTES_PER_TASK:
                groups.append(group)
                group, size = [], 0
        if group:
            groups.append(group)
        task = remote(self._ray, _read_files)
        results = self._gather([task.remote(group, limits) for group in groups],
                               lambda group_results: progress(sum(f.size for f in group_results[0])))
        return [document for _, documents in results for document in documents]

    def embed(self, model_dir: Path, batch_chars: int, texts: Sequence[str],
              progress: Callable[[int], None]) -> np.ndarray:
        """Unit vectors of `texts` by the ONNX export in `model_dir`, embedded on the workers."""
        files = {name: (model_dir / name).read_bytes() for name in FILES}
        checksum = hashlib.sha256(b"".join(files[name] for name in FILES)).hexdigest()
        model = self._ray.put(files)  # once: every worker reads it from the object store
        # Tasks of similar lengths, as local batches are: padding costs little.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = [order[start : start + TEXTS_PER_TASK] for start in range(0, len(order), TEXTS_PER_TASK)]
        task = remote(self._ray, _embed_texts)
        # The model goes inside a list so that Ray hands the worker its reference, not a
        # fresh copy per task: a worker that has loaded it never fetches it again.
        results = self._gather(
            [task.remote([model], checksum, [texts[i] for i in chunk], batch_chars) for chunk in chunks],
            lambda vectors: progress(len(vectors)),
        )
        vectors = np.zeros((len(texts), results[0].shape[1] if results else 0), dtype=np.float32)
        for chunk, chunk_vectors in zip(chunks, results):
            vectors[chunk] = chunk_vectors
        return vectors

    def _gather(self, refs: list, on_done: Callable) -> list:
        """The results of `refs` in order, calling `on_done` with each as it finishes."""
        position = {ref: index for index, ref in enumerate(refs)}
        results: list = [None] * len(refs)
        pending = list(refs)
        try:
            while pending:
                done, pending = self._ray.wait(pending, num_returns=1)
                for ref in done:
                    results[position[ref]] = self._ray.get(ref)
                    on_done(results[position[ref]])
        except BaseException:
            for ref in pending:  # a failed or interrupted build leaves no work behind
                self._ray.cancel(ref, force=True)
            raise
        return results


def _read_files(files: list[CorpusFile], limits: ExtractLimits) -> tuple[list[CorpusFile], list[Document | Skipped]]:
    """On a worker: read each file in one sandboxed process (Ray runs a task per core), or say why it can't be."""
    return files, read_files(files, limits, workers=1)


def _embed_texts(model: list, checksum: str, texts: list[str], batch_chars: int) -> np.ndarray:
    """On a worker: embed texts with the model sent, loading it on this worker's first task only."""
    embedder = _WORKER_EMBEDDERS.get(checksum)
    if embedder is None:
        import ray

        # One onnxruntime thread per task: Ray runs one task per core.
        embedder = OnnxEmbedder(Path("<object store>"), threads=1, files=ray.get(model[0]))
        _WORKER_EMBEDDERS.clear()  # a new model replaces the old
        _WORKER_EMBEDDERS[checksum] = embedder
    return embed_in_batches(texts, embedder.dimension, embedder._embed_batch, batch_chars)
