"""The answer selector: a trained cross-encoder that scores whether a sentence answers a question.

The model (bot/selector/, trained by `make train-selector`, see its MODEL_CARD.md)
runs in onnxruntime with a `tokenizers` tokenizer, so answering needs no torch.
Its files are checked against the checksums committed beside them before loading.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from index.errors import VerbatimError
from index.store import file_sha256

MODEL_DIR = Path(__file__).resolve().parent / "selector"
FILES = ("model.onnx", "tokenizer.json", "calibration.json")
CHECKSUMS = "SHA256SUMS.json"
# Question, title and sentence are cut to this many tokens (long sentences lose their tail).
MAX_TOKENS = 96
TITLE_MAX_CHARS = 80


@dataclass(frozen=True)
class Calibration:
    """How the selector's logit and retrieval's evidence become a probability that the best quote answers
    (fitted by bench/calibrate_selector.py on TyDi's calib slice, never on the test slice)."""

    retrieval_weight: float = 2.0  # a quote's score: logit + retrieval_weight * retrieval score
    coverage_weight: float = 0.0  # evidence: best score + coverage_weight * idf-weighted coverage
    scale: float = 1.0
    offset: float = 0.0

    def probability(self, best_score: float, coverage: float) -> float:
        """The calibrated probability that a quote with this score and coverage answers."""
        evidence = best_score + self.coverage_weight * coverage
        return 1.0 / (1.0 + math.exp(-(self.scale * evidence + self.offset)))


class SelectorUnavailable(VerbatimError):
    """The selector model is missing or its files don't match their checksums."""


def pair_text(title: str, sentence: str) -> str:
    """What the selector reads beside the question: the document's title, then the sentence."""
    title = " ".join(title.split())[:TITLE_MAX_CHARS]
    return f"{title} | {sentence}" if title else sentence


def write_checksum(directory: Path, files: Sequence[str] = FILES) -> None:
    """Record the sha256 of a model's files (done once, when the model is trained)."""
    sums = {name: file_sha256(directory / name) for name in files}
    (directory / CHECKSUMS).write_text(json.dumps(sums, indent=2) + "\n", encoding="utf-8")


def verify(directory: Path, files: Sequence[str] = FILES, what: str = "answer selector") -> None:
    """Raise SelectorUnavailable unless every file matches its recorded checksum."""
    try:
        sums = json.loads((directory / CHECKSUMS).read_text(encoding="utf-8"))
        for name in files:
            if file_sha256(directory / name) != sums[name]:
                raise SelectorUnavailable(f"the {what}'s {name} does not match its checksum; reinstall Verbatim")
    except (OSError, ValueError, KeyError) as error:
        raise SelectorUnavailable(f"the {what} in {directory} cannot be read ({error}); reinstall Verbatim") from error


def read_calibration(directory: Path) -> Calibration:
    """The calibration stored beside the model."""
    stored = json.loads((directory / "calibration.json").read_text(encoding="utf-8"))
    return Calibration(**{f.name: float(stored[f.name]) for f in fields(Calibration) if f.name in stored})


class Selector:
    """Scores (question, text) pairs with the trained cross-encoder; higher means more likely to answer."""

    def __init__(self, directory: Path = MODEL_DIR, threads: int = 0) -> None:
        verify(directory)
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self._session = onnxruntime.InferenceSession(str(directory / "model.onnx"), options, providers=["CPUExecutionProvider"])
            self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        except Exception as error:  # onnxruntime raises its own untyped errors for bad models
            raise SelectorUnavailable(f"cannot load the answer selector: {error}") from error
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS, strategy="only_second")
        self._tokenizer.enable_padding()
        self.calibration = read_calibration(directory)

    def scores(self, question: str, texts: Sequence[str]) -> np.ndarray:
        """One logit per text."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        encodings = self._tokenizer.encode_batch([(question, text) for text in texts])
        feed = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        return self._session.run(None, feed)[0].reshape(-1)
