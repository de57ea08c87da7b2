"""The answer selector: a trained cross-encoder that scores whether a sentence answers a question.

The model (bot/answering/models/selector/, trained by `make train-selector`, see its MODEL_CARD.md)
runs in onnxruntime with a `tokenizers` tokenizer, so answering needs no torch.
Its files are checked against the checksums committed beside them before loading.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.errors import VerbatimError
from index.checksums import verify_checksums, write_checksums

MODEL_DIR = Path(__file__).resolve().parent / "models" / "selector"
FILES = ("model.onnx", "tokenizer.json", "calibration.json")
# Question, title and sentence are cut to this many tokens (long sentences lose their tail).
MAX_TOKENS = 96
TITLE_MAX_CHARS = 80


# What the stacked refusal reads: the refusal logit of the stage before (the ranker's probability, as
# log-odds), the best read sentence's logit and its lead over the other read ones. The ranker's refusal was
# fitted on three times more real questions than the selector's calibration can use, so it enters whole.
STACK_FEATURES = ("ranker_refusal_logit", "best_logit", "logit_margin")
# The shelf's size (log of its indexed passages), alone and beside each of those: the ranker's evidence is
# relative to the other candidates, so what it is worth shifts as the shelf grows (bench/shelves.py fits
# these across shelves of one document to thousands of passages).
SIZE_FEATURES = ("log_passages", *(f"{name}*log_passages" for name in STACK_FEATURES))
# Of the read sentence itself, whatever the shelf's size: the share of the question's names its document's
# candidates hold, and its cosine to the question (the ranker's features names_in_document and dense).
TRAIT_FEATURES = ("names_found", "dense", "names_found*log_passages", "dense*log_passages")
ALL_FEATURES = (*STACK_FEATURES, *SIZE_FEATURES, *TRAIT_FEATURES)
# The passage reader's calibration names the selector's refusal logit first; it stands where the ranker's does.
_PRIOR_ALIASES = {"selector_refusal_logit": "ranker_refusal_logit"}


def log_odds(probability: float) -> float:
    """The log-odds of a probability, kept finite."""
    p = min(max(probability, 1e-12), 1.0 - 1e-12)
    return math.log(p / (1.0 - p))


@dataclass(frozen=True)
class Calibration:
    """How the selector's logits join the ranker's scores and refusal (fitted by
    bench/training/calibrate_selector.py on questions neither model was fitted on, never on the test slice;
    the refusal refitted across shelf sizes by bench/shelves.py)."""

    logit_weight: float = 1.0  # a read sentence's lift: logit_weight * its logit's lead over the lowest read
    refusal_weights: tuple[float, ...] = ()  # over `features`
    refusal_bias: float = 0.0
    features: tuple[str, ...] = STACK_FEATURES

    def lifts(self, logits: np.ndarray) -> np.ndarray:
        """How far each read candidate rises above the ranker's score: its logit's lead over the
        lowest read, weighed (never negative, so the read stay above those the selector did not read)."""
        return self.logit_weight * (logits - logits.min())

    def rescored(self, scores: np.ndarray, read: np.ndarray, logits: np.ndarray) -> np.ndarray:
        """The ranker's `scores` with the read candidates' (indices `read`) lifts added."""
        rescored = scores.astype(np.float64)
        rescored[read] += self.lifts(logits)
        return rescored

    def probability(self, ranker_probability: float, logits: np.ndarray, best: int, passages: int = 1,
                    traits: np.ndarray | None = None) -> float:
        """The probability that the read candidate at position `best` of `logits` answers, on a shelf of
        `passages` indexed passages (`traits`: each read candidate's names_found and dense)."""
        return self.probability_of(self.evidence(ranker_probability, logits, best, passages, traits))

    def probability_of(self, evidence: np.ndarray) -> float:
        """The probability that a candidate with this `evidence` (over `features`) answers."""
        z = float(evidence @ np.asarray(self.refusal_weights)) + self.refusal_bias
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def evidence(self, ranker_probability: float, logits: np.ndarray, best: int, passages: int = 1,
                 traits: np.ndarray | None = None) -> np.ndarray:
        """This calibration's `features` for one candidate."""
        return stack_evidence(ranker_probability, logits, best, passages, self.features, traits)

    @staticmethod
    def stack_evidence(ranker_probability: float, logits: np.ndarray, best: int) -> np.ndarray:
        """STACK_FEATURES for one question."""
        return stack_evidence(ranker_probability, logits, best)


def stack_evidence(prior_probability: float, logits: np.ndarray, best: int, passages: int = 1,
                   features: Sequence[str] = STACK_FEATURES, traits: np.ndarray | None = None) -> np.ndarray:
    """`features` (of ALL_FEATURES) for the read candidate at `best`, after a stage whose refusal gave
    `prior_probability`, on a shelf of `passages` passages; `traits` holds each read candidate's
    names_found and dense (unknown: all names found, cosine 0)."""
    others = np.delete(logits, best)
    names, dense = (float(traits[best][0]), float(traits[best][1])) if traits is not None else (1.0, 0.0)
    base = {"ranker_refusal_logit": log_odds(prior_probability), "best_logit": float(logits[best]),
            "logit_margin": float(logits[best] - (others.max() if len(others) else 0.0)),
            "names_found": names, "dense": dense}
    size = math.log(max(passages, 1))
    named = {**base, "log_passages": size, **{f"{name}*log_passages": value * size for name, value in base.items()}}
    return np.array([named[_PRIOR_ALIASES.get(name, name)] for name in features])


class SelectorUnavailable(VerbatimError):
    """The selector model is missing or its files don't match their checksums."""


def pair_text(title: str, sentence: str, before: str | None = None) -> str:
    """What the selector reads beside the question: the document's title, then the sentence. A model
    trained with context (`make try-selector-context`) reads `before` between them (context_before)."""
    title = " ".join(title.split())[:TITLE_MAX_CHARS]
    if before is not None:
        return f"{title} | {before} || {sentence}"
    return f"{title} | {sentence}" if title else sentence


def context_before(text_before: str, chars: int) -> str:
    """The end of the text before a sentence, at most `chars` of it from a word's start, its
    whitespace read as single spaces."""
    before = text_before[-chars:]
    if len(before) == chars and not before[0].isspace():
        before = before.partition(" ")[2]  # it began mid-word
    return " ".join(before.split())


def write_checksum(directory: Path, files: Sequence[str] = FILES) -> None:
    """Record the sha256 of a model's files (done once, when the model is trained)."""
    write_checksums(directory, files)


def verify(directory: Path, files: Sequence[str] = FILES, what: str = "answer selector") -> None:
    """Raise SelectorUnavailable unless every file matches its recorded checksum."""
    verify_checksums(directory, files, what, SelectorUnavailable)


def read_calibration(directory: Path, what: str = "answer selector", fitted_by: str = "make calibrate-selector") -> Calibration:
    """The calibration stored beside the model."""
    stored = json.loads((directory / "calibration.json").read_text(encoding="utf-8"))
    try:
        features = tuple(stored.get("refusal_features", STACK_FEATURES))
        weights = tuple(float(w) for w in stored["refusal_weights"])
        if len(weights) != len(features) or not set(features) <= {*ALL_FEATURES, *_PRIOR_ALIASES}:
            raise ValueError(f"{len(weights)} weights over features {features}")
        return Calibration(float(stored["logit_weight"]), weights, float(stored["refusal_bias"]), features)
    except (KeyError, TypeError, ValueError) as error:
        raise SelectorUnavailable(f"the {what}'s calibration.json is not this version's ({error}); "
                                  f"run `{fitted_by}`") from error


def load_pair_model(directory: Path, what: str, threads: int = 0, spinning: bool = True):
    """The onnxruntime session of `directory`/model.onnx and its `tokenizers` tokenizer (checksums verified
    by the caller). `spinning=False`: its threads sleep between runs rather than compete with the next model's."""
    import onnxruntime
    from tokenizers import Tokenizer

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = onnxruntime.InferenceSession(str(directory / "model.onnx"), options, providers=["CPUExecutionProvider"])
        return session, Tokenizer.from_file(str(directory / "tokenizer.json"))
    except Exception as error:  # onnxruntime raises its own untyped errors for bad models
        raise SelectorUnavailable(f"cannot load the {what}: {error}") from error


def pair_feed(encoding) -> dict[str, np.ndarray]:
    """One encoded (question, text) pair as the models' inputs."""
    return {
        "input_ids": np.array([encoding.ids], dtype=np.int64),
        "attention_mask": np.array([encoding.attention_mask], dtype=np.int64),
        "token_type_ids": np.array([encoding.type_ids], dtype=np.int64),
    }


class Selector:
    """Scores (question, text) pairs with the trained cross-encoder; higher means more likely to answer.
    Verbatim reads the ranker's best few sentences with it (bot/answering/answer.py: `with_selector`)."""

    def __init__(self, directory: Path = MODEL_DIR, threads: int = 0, calibrated: bool = True,
                 max_tokens: int = MAX_TOKENS) -> None:
        """`calibrated=False` skips calibration.json (for fitting it: bench/training/calibrate_selector.py)."""
        verify(directory)
        self._session, self._tokenizer = load_pair_model(directory, "answer selector", threads)
        self._tokenizer.enable_truncation(max_length=max_tokens, strategy="only_second")
        self.calibration = read_calibration(directory) if calibrated else Calibration()

    def scores(self, question: str, texts: Sequence[str]) -> np.ndarray:
        """One logit per text."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        # One pair a run: padding a few pairs to the longest costs more than the extra runs, and
        # encode_batch's worker threads, spinning, slow the model's own (both measured).
        logits = []
        for encoding in (self._tokenizer.encode(question, text) for text in texts):
            logits.append(self._session.run(None, pair_feed(encoding))[0].reshape(-1)[0])
        return np.array(logits, dtype=np.float32)
