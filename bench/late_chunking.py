"""Sentence vectors with and without their context: `make bench-late-chunking`.

On TyDi QA's *calib* slice (100 articles held out of the index, as `make fit-ranker` does), how
often the candidate with the best cosine to the question holds the answer, for three vectors of
each candidate sentence: "alone", the sentence by itself (index format 3); "titled", the sentence
after its document's title, as the index embeds it since format 4 (index.build.sentence_in_context);
and "late", the mean of the sentence's tokens' vectors from one pass over its whole passage (late
chunking; MiniLM reads up to 256 tokens, and a sentence past them keeps its own vector). For
"late", the ranker's score plus a share of that cosine is also tried, the share chosen on one half
of the questions and measured on the other (2-fold, both ways). Writes bench/results/late-chunking.json.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import numpy as np

from common import held_out_index, require_data, write_json_results  # (also puts the project on sys.path)

from bot.answering.answer import Answerer  # noqa: E402
from bot.cli.evaluation import load_eval_set, select_slice  # noqa: E402
from index.build import sentence_in_context  # noqa: E402
from index.storage import store  # noqa: E402

HOLDOUT = 100
SHARES = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0)


def late_vectors(generation: Path, embedder) -> dict[int, np.ndarray]:
    """Each sentence id's vector pooled from its passage's token vectors (unit length)."""
    database = sqlite3.connect(generation / store.METADATA)
    texts = dict(database.execute("SELECT id, text FROM documents"))
    vectors: dict[int, np.ndarray] = {}
    passages = database.execute("SELECT id, document_id, start, end FROM passages").fetchall()
    for passage_id, document_id, start, end in passages:
        text = texts[document_id][start:end]
        encoding = embedder._tokenizer.encode(text)
        ids = np.array([encoding.ids], dtype=np.int64)
        arrays = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        (hidden,) = embedder._session.run(None, {name: arrays[name] for name in embedder._input_names})
        offsets = np.array(encoding.offsets)
        special = np.array(encoding.special_tokens_mask, dtype=bool)
        for sentence_id, s_start, s_end in database.execute(
                "SELECT id, start, end FROM sentences WHERE passage_id = ?", (passage_id,)):
            inside = ~special & (offsets[:, 0] >= s_start - start) & (offsets[:, 1] <= s_end - start) & (offsets[:, 1] > offsets[:, 0])
            if inside.any():
                pooled = hidden[0][inside].mean(axis=0)
                vectors[sentence_id] = pooled / np.linalg.norm(pooled)
    return vectors


def first_quote_hits(rows: list[dict], share: float, context: str) -> float:
    return float(np.mean([row["y"][int(np.argmax(np.array(row["rank"]) + share * np.array(row[context])))]
                          for row in rows]))


def main() -> int:
    (tydi,) = require_data("tydiqa-en-train.json")
    calib = select_slice(load_eval_set(tydi), "calib")
    held_out = set(list(calib.articles)[-HOLDOUT:])
    with held_out_index(calib, held_out, "verbatim-late-") as settings:
        answerer = Answerer(settings)
        searcher, embedder = answerer.searcher, answerer.engine.embedder
        late = late_vectors(searcher.generation, embedder)
        rows = []
        alone: dict[int, np.ndarray] = {}
        titled: dict[int, np.ndarray] = {}
        for question in calib.questions:
            if not question.answers or question.article in held_out:
                continue
            hits = searcher.search(question.question)
            if not hits:
                continue
            asked = embedder.embed([question.question])[0]
            scores = answerer.ranker.scores(question.question, hits)
            fresh = [hit for hit in hits if hit.sentence_id not in titled]
            if fresh:
                alone.update(zip((hit.sentence_id for hit in fresh), embedder.embed([hit.text for hit in fresh])))
                contexts = [sentence_in_context(searcher.document_title(hit.document_id), hit.text) for hit in fresh]
                titled.update(zip((hit.sentence_id for hit in fresh), embedder.embed(contexts)))
            rows.append({
                "y": [any(gold in hit.text for gold in question.answers) for hit in hits],
                "rank": scores.tolist(),
                "late": [float(late[hit.sentence_id] @ asked) if hit.sentence_id in late
                         else float(alone[hit.sentence_id] @ asked) for hit in hits],
                "alone": [float(alone[hit.sentence_id] @ asked) for hit in hits],
                "titled": [float(titled[hit.sentence_id] @ asked) for hit in hits],
            })
    halves = [rows[0::2], rows[1::2]]
    report = {
        "data": f"TyDi QA English calib slice, {HOLDOUT} articles held out of the index; in-corpus questions",
        "questions": len(rows),
        "best_candidate_alone": {
            name: round(float(np.mean([row["y"][int(np.argmax(row[name]))] for row in rows])), 4)
            for name in ("alone", "titled", "late", "rank")},
    }
    for context in ("late",):
        folds = []
        for chosen_on, measured_on in ((halves[0], halves[1]), (halves[1], halves[0])):
            share = max(SHARES, key=lambda s: first_quote_hits(chosen_on, s, context))
            folds.append({"share": share, "ranker": round(first_quote_hits(measured_on, 0.0, context), 4),
                          f"ranker_plus_{context}": round(first_quote_hits(measured_on, share, context), 4)})
        report[f"ranker_plus_share_of_{context}_cosine"] = {
            str(share): round(first_quote_hits(rows, share, context), 4) for share in SHARES}
        report[f"two_fold_{context}"] = folds
    write_json_results("late-chunking.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
