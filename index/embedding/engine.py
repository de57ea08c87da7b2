"""Which engine embeds: an ONNX export (no torch when answering) or sentence-transformers.

A build exports the model once per model version into `cache_dir/onnx-*`, or takes a committed
export as it is (checksum-verified), and links the files into each generation, whose manifest
checksums them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from config import Settings
from index.checksums import recorded_checksums, verify_checksums
from index.embedding.embed import CONFIG_FILE, COMMITTED_MODELS, FILES, OnnxEmbedder, load_embedder, resolve_model
from index.embedding.onnx_export import PER_CHANNEL, NotExportable, export
from index.errors import ModelUnavailable
from index.notice import warn

SENTENCE_TRANSFORMERS = "sentence-transformers"


@dataclass(frozen=True)
class Engine:
    """An embedder, its engine's name as recorded in the manifest, and why ONNX isn't used (if not)."""

    embedder: object
    name: str
    note: str = ""


def build_engine(settings: Settings, generation_dir: Path) -> Engine:
    """The engine a build embeds with; ONNX files, when used, are placed in `generation_dir`."""
    if settings.embedding_engine == SENTENCE_TRANSFORMERS:
        reference = load_embedder(settings.model, settings.embed_batch_chars)
        return Engine(reference, SENTENCE_TRANSFORMERS, "embedding_engine is sentence-transformers")
    exported = onnx_directory(settings.model)
    if exported is not None:
        if settings.model in COMMITTED_MODELS:
            verify_checksums(exported, FILES, f"embedding model {settings.model}", ModelUnavailable)
        embedder = _linked_embedder(exported, generation_dir)
        embedder.batch_chars = settings.embed_batch_chars
        return Engine(embedder, wanted_engine(settings))
    try:
        exported = _cached_export(settings)
    except NotExportable as reason:
        if settings.embedding_engine == "onnx":
            raise ModelUnavailable(f"cannot export {settings.model!r} to ONNX: {reason}") from None
        reference = load_embedder(settings.model, settings.embed_batch_chars)
        return Engine(reference, SENTENCE_TRANSFORMERS, f"no ONNX export: {reason}")
    try:
        embedder = _linked_embedder(exported, generation_dir)
    except ModelUnavailable as damage:
        # The export is a cache too: a damaged one is made again, not fatal.
        warn(f"the cached ONNX export {exported} is unusable ({damage}); exporting the model again")
        shutil.rmtree(exported, ignore_errors=True)
        for name in FILES:
            (generation_dir / name).unlink(missing_ok=True)
        embedder = _linked_embedder(_cached_export(settings), generation_dir)
    embedder.batch_chars = settings.embed_batch_chars
    return Engine(embedder, wanted_engine(settings))


def wanted_engine(settings: Settings) -> str:
    """The engine name a build records when it embeds with an ONNX export."""
    exported = onnx_directory(settings.model)
    if exported is None:
        return "onnx-int8" if settings.onnx_int8 else "onnx"
    try:
        quantized = json.loads((exported / CONFIG_FILE).read_text(encoding="utf-8")).get("quantized", False)
    except (OSError, ValueError, AttributeError) as error:
        raise ModelUnavailable(f"cannot read {exported / CONFIG_FILE} ({error})") from error
    return "onnx-int8" if quantized else "onnx"


def onnx_directory(model: str) -> Path | None:
    """The folder of a model that is already an ONNX export (as index/embedding/onnx_export.py writes one):
    a committed one by name, or a local folder holding its files."""
    if model in COMMITTED_MODELS:
        return COMMITTED_MODELS[model]
    folder = Path(model).expanduser()
    return folder if all((folder / name).is_file() for name in FILES) else None


def _linked_embedder(exported: Path, generation_dir: Path) -> OnnxEmbedder:
    for name in FILES:
        _link_or_copy(exported / name, generation_dir / name)
    return OnnxEmbedder(generation_dir)


def query_engine(settings: Settings, generation_dir: Path, engine_name: str) -> Engine:
    """The engine that embeds questions for an index built with `engine_name`."""
    if engine_name.startswith("onnx") and settings.embedding_engine != SENTENCE_TRANSFORMERS:
        # A question is one short run: threads left spinning after it only slow the answer selector's.
        return Engine(OnnxEmbedder(generation_dir, spinning=False), engine_name)
    note = "" if engine_name == SENTENCE_TRANSFORMERS else "embedding_engine is sentence-transformers"
    return Engine(load_embedder(settings.model, settings.embed_batch_chars), SENTENCE_TRANSFORMERS, note)


def engine_key(settings: Settings, engine_name: str) -> str:
    """Identity of the vectors an engine produces, for the embedding cache."""
    return f"{settings.model}|{engine_name}|{_export_key(settings)}"


def _cached_export(settings: Settings) -> Path:
    # A cached export spares the build torch and the model load altogether.
    cache = settings.cache_path / f"onnx-{_export_key(settings)}"
    if all((cache / name).is_file() for name in FILES):
        return cache
    reference = load_embedder(settings.model, settings.embed_batch_chars)
    cache.parent.mkdir(parents=True, exist_ok=True)
    scratch = cache.with_name(f".{cache.name}.{uuid.uuid4().hex[:8]}")
    try:
        export(reference._model, scratch, quantize=settings.onnx_int8)
        shutil.rmtree(cache, ignore_errors=True)
        os.rename(scratch, cache)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return cache


def model_checksum(model: str) -> str:
    """sha256 identity of a model's files, which decides whether an index must be embedded again ("" when the
    model is a name sentence-transformers would look up, not a folder)."""
    committed = COMMITTED_MODELS.get(model)
    if committed is not None:
        try:
            sums = recorded_checksums(committed)
            return hashlib.sha256("".join(f"{name}={sums[name]}\n" for name in FILES).encode()).hexdigest()
        except (OSError, ValueError, KeyError) as error:
            raise ModelUnavailable(f"the embedding model {model} in {committed} cannot be read ({error}); "
                                   "reinstall Verbatim") from error
    location = Path(resolve_model(model))
    if not location.is_dir():
        return ""
    files = tuple((path.relative_to(location).as_posix(), path.stat().st_size, path.stat().st_mtime_ns)
                  for path in sorted(location.rglob("*")) if path.is_file())
    return _files_sha256(location, files)


@lru_cache(maxsize=4)
def _files_sha256(location: Path, files: tuple[tuple[str, int, int], ...]) -> str:
    # Keyed on (path, size, mtime): a process hashes a model's ~100 MB once, not at every build.
    digest = hashlib.sha256()
    for name, _, _ in files:
        digest.update(name.encode() + b"\0")
        with open(location / name, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def _export_key(settings: Settings) -> str:
    if onnx_directory(settings.model) is not None:
        return model_checksum(settings.model)[:16]
    # The export changes when the model's files, the quantization, torch or onnxruntime (which
    # optimizes the graph it holds: onnx_export.preoptimize) change.
    from importlib.metadata import version

    quantization = f"{settings.onnx_int8}" + ("|per-channel" if PER_CHANNEL and settings.onnx_int8 else "")
    digest = hashlib.sha256(
        f"{settings.model}|{quantization}|{version('torch')}|{version('onnxruntime')}|preoptimized".encode()
    )
    location = Path(resolve_model(settings.model))
    if location.is_dir():
        for path in sorted(location.rglob("*")):
            if path.is_file():
                stat = path.stat()
                digest.update(f"{path.relative_to(location)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
