"""The passage reader: an extractive question-answering model that reads a stretch of a passage at once.

Where the selector reads one sentence at a time, the reader reads the best sentences after it with
their neighbours and scores every token as the start or the end of an answer, as SQuAD readers do.
A sentence's score is the best answer span inside it against the text's "no answer" score, so
an answer that only the sentence before makes sense of ("he was 38") can still be told apart.
Only sentences are ever quoted: the span itself is never shown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bot.answering.selector import Calibration, load_pair_model, pair_feed, read_calibration, verify
from index.search.hybrid import Hit

# Question and passage are cut to this many tokens (the passage's tail first).
MAX_TOKENS = 256
# The longest answer span considered, in tokens.
MAX_SPAN_TOKENS = 40
# Each sentence is read with this many sentences of its passage either side: on the calibration questions as
# good as the whole passage on TyDi (0.818 for both; SQuAD 0.860 against 0.865) in 85% of the reader's
# time; the sentence alone, 0.791 and 0.859 in 59% (`make bench-reader-windows`).
CONTEXT_SENTENCES = 1


def sentence_scores(start_logits: np.ndarray, end_logits: np.ndarray, offsets: Sequence[tuple[int, int]],
                    in_passage: Sequence[bool], spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """For each sentence (a character span of the passage), its best answer span's score (start
    logit + end logit, the end not before the start and at most MAX_SPAN_TOKENS after it) less the
    no-answer score (both at [CLS]). A sentence the token limit cut off scores -inf."""
    null = float(start_logits[0] + end_logits[0])
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    usable = np.asarray(in_passage, dtype=bool) & (offsets[:, 1] > offsets[:, 0])
    scores = np.full(len(spans), -np.inf)
    for number, (begin, end) in enumerate(spans):
        inside = np.flatnonzero(usable & (offsets[:, 0] >= begin) & (offsets[:, 1] <= end))
        if not len(inside):
            continue
        starts, ends = start_logits[inside], end_logits[inside]
        # ends_after[i, k]: the end logit k tokens after start i (-inf past the sentence).
        width = min(MAX_SPAN_TOKENS, len(inside))
        padded = np.concatenate([ends, np.full(width, -np.inf)])
        ends_after = np.lib.stride_tricks.sliding_window_view(padded, width)[: len(inside)]
        scores[number] = float((starts + ends_after.max(axis=1)).max()) - null
    return scores


MODEL_DIR = Path(__file__).resolve().parent / "models" / "reader"
FILES = ("model.onnx", "tokenizer.json", "calibration.json")


class Reader:
    """Scores the sentences of a passage with the trained extractive reader, in onnxruntime (no torch)."""

    def __init__(self, directory: Path = MODEL_DIR, threads: int = 0, calibrated: bool = True) -> None:
        """`calibrated=False` skips calibration.json (for fitting it: bench/training/train_reader.py)."""
        verify(directory, FILES, "passage reader")
        # Its threads left spinning after a run slow whichever model runs next on the same cores.
        self._session, self._tokenizer = load_pair_model(directory, "passage reader", threads, spinning=False)
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS, strategy="only_second")
        self._tokenizer.no_padding()
        self.calibration = read_calibration(directory, "passage reader", "make calibrate-reader") if calibrated else Calibration()

    def scores(self, question: str, passage: str, spans: Sequence[tuple[int, int]]) -> np.ndarray:
        """One score per sentence of `passage` (`spans`: their characters in it): sentence_scores."""
        encoding = self._tokenizer.encode(question, passage)
        start, end = self._session.run(None, pair_feed(encoding))
        in_passage = [sequence == 1 for sequence in encoding.sequence_ids]
        return sentence_scores(start[0], end[0], encoding.offsets, in_passage, spans)

    def read(self, question: str, hits: Sequence[Hit], best: Sequence[int],
             text_of: Callable[[int], str]) -> tuple[np.ndarray, np.ndarray]:
        """The reader's score of every sentence in the windows of the sentences `best` (indices into `hits`):
        their indices into `hits` and their scores (a sentence the token limit cut off is left out)."""
        read, scores = [], []
        for window in windows(hits, best):
            first, last = hits[window[0]], hits[window[-1]]
            text = text_of(first.document_id)[first.start : last.end]
            found = self.scores(question, text, [(hits[i].start - first.start, hits[i].end - first.start) for i in window])
            kept = np.isfinite(found)
            read += [i for i, keep in zip(window, kept) if keep]
            scores += found[kept].tolist()
        return np.array(read, dtype=np.int64), np.array(scores, dtype=np.float64)


def windows(hits: Sequence[Hit], best: Sequence[int], context: int = CONTEXT_SENTENCES) -> list[list[int]]:
    """What the reader reads for the sentences `best` (indices into `hits`): each with `context` sentences of
    its passage either side, windows that overlap or touch joined; each window's indices in text order."""
    wanted: dict[int, set[int]] = {}
    for i in best:
        members = sorted((j for j, hit in enumerate(hits) if hit.passage_id == hits[i].passage_id),
                         key=lambda j: hits[j].sentence_id)
        place = members.index(i)
        wanted.setdefault(hits[i].passage_id, set()).update(members[max(0, place - context) : place + context + 1])
    found = []
    for chosen in wanted.values():
        window: list[int] = []
        for j in sorted(chosen, key=lambda j: hits[j].sentence_id):
            if window and hits[j].sentence_id != hits[window[-1]].sentence_id + 1:
                found.append(window)
                window = []
            window.append(j)
        found.append(window)
    return found
