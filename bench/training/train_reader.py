"""Train and calibrate the passage reader (bot/answering/reader.py): `make train-reader` (`make calibrate-reader`
measures and calibrates the shipped model in bot/answering/models/reader again).

An extractive question-answering model initialised from the bundled all-MiniLM-L6-v2 and trained,
as SQuAD 2.0 readers are, to point at the answer's first and last tokens in a passage, or at
[CLS] when the passage doesn't answer. The training questions are the answer selector's (TyDi
QA's train slice less fold STACK_FOLD, the first SQUAD_ARTICLES SQuAD train articles); for each,
the passage that holds the answer (as the index cut it, from the ranker's cached candidates) and
the best-ranked passage that doesn't. Then it is measured and calibrated where the selector is
(TyDi fold STACK_FOLD and calib, the last SQuAD train articles, which neither model saw): does the
sentence it points at, reading the best sentences after the selector with their neighbours as
answering does (bot/answering/reader.py: windows), hold the answer more often than the selector's choice; how
many sentences to read, how much its score weighs, and the stacked refusal. Writes bot/answering/models/reader/ (int8
ONNX, tokenizer, calibration, checksums), reader_sentences and reader_min_probability into
config/defaults.toml, and bench/results/reader-training.json; nothing
from TyDi's test slice or SQuAD dev is read. Seeded, but torch's CPU kernels make reruns equal
only up to rounding.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: its shared common.py
from common import DATA, RESULTS, ROOT, require_data, set_defaults  # noqa: E402  (also puts the project on sys.path)

from calibrate_selector import calibration_sets  # noqa: E402
from fit_ranker import FOLD_HOLDOUT, cached_hits, fit_refusal_on, holds_answer, search_candidates, train_folds  # noqa: E402
from train_selector import SQUAD_ARTICLES, STACK_FOLD, export_onnx, fine_tune, pair  # noqa: E402

from bot.answering.answer import stacked  # noqa: E402
from bot.answering.ranker import Ranker  # noqa: E402
from bot.answering.reader import FILES, MAX_TOKENS, MODEL_DIR, Reader, windows  # noqa: E402
from bot.answering.selector import Calibration, Selector, log_odds, write_checksum  # noqa: E402
from bot.cli.evaluation import load_eval_set, select_slice  # noqa: E402
from index.embedding.embed import resolve_model  # noqa: E402
from index.storage.store import file_sha256  # noqa: E402

WORK = ROOT / "var" / "reader"
SEED = 13
BATCH = 16
LEARNING_RATE = 8e-5
EPOCHS = 2
MAX_SENTENCES = 2  # the reader reads the windows of the best 1 or 2 sentences after the selector (each read costs ~15 ms)
WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 100.0)
# One int8 scale per output channel of each weight matrix rather than one per matrix: int8 loses less of the fp32
# model (see the model card).
PER_CHANNEL = True


@dataclass(frozen=True)
class Example:
    question: str
    passage: str
    answer: tuple[int, int] | None  # its characters in the passage; None: the passage doesn't answer


def passages(hits: list) -> dict[int, list[int]]:
    """Each candidate passage's sentences (indices into `hits`), in the passage's order."""
    members: dict[int, list[int]] = {}
    for number, hit in enumerate(hits):
        members.setdefault(hit.passage_id, []).append(number)
    return {pid: sorted(numbers, key=lambda n: hits[n].sentence_id) for pid, numbers in members.items()}


def passage_text(hits: list, members: list[int]) -> tuple[str, list[tuple[int, int]]]:
    """A cached passage's text (its sentences joined by a space) and each sentence's characters in it."""
    text, spans = "", []
    for n in members:
        if text:
            text += " "
        spans.append((len(text), len(text) + len(hits[n].text)))
        text += hits[n].text
    return text, spans


def examples_of(collected: dict, ranker: Ranker, keep=lambda item: True) -> list[Example]:
    """The answering passage (if retrieved) and the best-ranked passage without the answer, per question."""
    examples = []
    for item in filter(keep, collected["questions"]):
        hits = cached_hits(item)
        held = holds_answer(item, hits)
        order = np.argsort(-ranker.scores(item["question"], hits), kind="stable")
        by_passage = passages(hits)
        positive = next((i for i in order if held[i]), None)
        if positive is not None:
            members = by_passage[hits[positive].passage_id]
            text, spans = passage_text(hits, members)
            begin = spans[members.index(positive)][0]
            gold = next(g for g in item["answers"] if g in hits[positive].text)
            start = begin + hits[positive].text.index(gold)
            examples.append(Example(item["question"], text, (start, start + len(gold))))
        for i in order:
            text, _ = passage_text(hits, by_passage[hits[i].passage_id])
            if not any(gold in text for gold in item["answers"]):
                examples.append(Example(item["question"], text, None))
                break
    return examples


def training_examples() -> list[Example]:
    ranker = Ranker.load()
    tydi = select_slice(load_eval_set(DATA / "tydiqa-en-train.json"), "train")
    examples = []
    for number, part in enumerate(train_folds(tydi)):
        if number != STACK_FOLD:
            examples += examples_of(search_candidates(f"tydi-train-fold{number}", part, set(list(part.articles)[-FOLD_HOLDOUT:])), ranker)
    squad = load_eval_set(DATA / "squad2-train-10.json")
    trained_on = set(list(squad.articles)[:SQUAD_ARTICLES])
    examples += examples_of(search_candidates("squad-train", squad, set()), ranker, lambda item: item["article"] in trained_on)
    return examples


def encode(tokenizer, batch: list[Example]):
    import torch

    encoded = tokenizer([e.question for e in batch], [e.passage for e in batch], padding=True, truncation="only_second",
                        max_length=MAX_TOKENS, return_offsets_mapping=True, return_tensors="pt")
    starts, ends = [], []
    for row, example in enumerate(batch):
        start = end = 0
        if example.answer is not None:
            sequence = encoded.sequence_ids(row)
            inside = [t for t, (a, b) in enumerate(encoded["offset_mapping"][row].tolist())
                      if sequence[t] == 1 and b > example.answer[0] and a < example.answer[1]]
            if inside:
                start, end = inside[0], inside[-1]
        starts.append(start)
        ends.append(end)
    encoded.pop("offset_mapping")
    return encoded, torch.tensor(starts), torch.tensor(ends)


def train(examples: list[Example], output: Path) -> dict:
    """Fine-tune MiniLM with a start/end head: cross-entropy on the answer's first and last token ([CLS] for none)."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    model = AutoModelForQuestionAnswering.from_pretrained(resolve_model("all-MiniLM-L6-v2"))
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("all-MiniLM-L6-v2"))
    rng = random.Random(SEED)

    def epoch_batches(epoch: int) -> list[list[int]]:
        order = list(range(len(examples)))
        rng.shuffle(order)
        # Batches of similar lengths (sorted within windows of 20 batches), in random order: less padding.
        length_groups = [sorted(order[i : i + 20 * BATCH], key=lambda n: len(examples[n].passage)) for i in range(0, len(order), 20 * BATCH)]
        batches = [w[i : i + BATCH] for w in length_groups for i in range(0, len(w), BATCH) if len(w[i : i + BATCH]) == BATCH]
        rng.shuffle(batches)
        return batches

    def loss_of(batch: list[int]):
        encoded, starts, ends = encode(tokenizer, [examples[n] for n in batch])
        out = model(**encoded)
        return (torch.nn.functional.cross_entropy(out.start_logits, starts) + torch.nn.functional.cross_entropy(out.end_logits, ends)) / 2

    steps = EPOCHS * (len(examples) // BATCH)
    return fine_tune(model, tokenizer, epoch_batches, loss_of, EPOCHS, steps, LEARNING_RATE, output)


def export(trained: Path, directory: Path) -> None:
    """The trained reader as int8 ONNX (start and end logits) with its tokenizer and checksums, into `directory`."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    model = AutoModelForQuestionAnswering.from_pretrained(trained).eval()
    export_onnx(model, AutoTokenizer.from_pretrained(trained), ("start_logits", "end_logits"), directory, PER_CHANNEL)
    calibration = directory / "calibration.json"
    if not calibration.exists():  # until calibrate() fits it, loading says to run that
        calibration.write_text(json.dumps({"note": "run `make calibrate-reader`"}) + "\n", encoding="utf-8")
    write_checksum(directory, FILES)


def read_windows(reader: Reader, question: str, hits: list, found: list[list[int]]) -> np.ndarray:
    """The reader's score of every sentence in the windows `found` (bot/answering/reader.py: windows), -inf elsewhere."""
    read = np.full(len(hits), -np.inf)
    for window in found:
        text, spans = passage_text(hits, window)
        read[window] = reader.scores(question, text, spans)
    return read


def shipped_reads(reader: Reader, question: str, hits: list, best: np.ndarray) -> dict:
    """For each k up to MAX_SENTENCES, the reading of the windows of the k best after the selector, as answering reads them."""
    return {k: read_windows(reader, question, hits, windows(hits, best[:k].tolist())) for k in range(1, MAX_SENTENCES + 1)}


def measured_rows(collected: dict, ranker: Ranker, reader: Reader, selector: Selector, keep=lambda item: True,
                  reads=shipped_reads) -> list[dict]:
    """Per question: the ranker's scores and refusal probability; the shipped selector's lifts; the reader's
    readings (`reads`, given the sentences in the order after the selector; the last is the row's "read"); labels."""
    rows = []
    for item in filter(keep, collected["questions"]):
        hits = cached_hits(item)
        judged = ranker.judge(item["question"], hits)
        candidates = np.argsort(-judged.scores, kind="stable")[: selector_candidates()]
        logits = selector.scores(item["question"], [pair(item, hits, i) for i in candidates]).astype(np.float64)
        selected = stacked(selector.calibration, judged, candidates, logits)  # as answering stacks them
        readings = reads(reader, item["question"], hits, np.argsort(-selected.lifted, kind="stable"))
        rows.append({"scores": judged.scores, "ranker_probability": judged.probability,
                     "reads": readings, "read": list(readings.values())[-1],
                     "selector_probability": selected.probability,
                     "selector_read": candidates, "selector_logits": logits, "in_corpus": item["in_corpus"],
                     "holds": np.array(holds_answer(item, hits))})
    return rows


def reading_first(row: dict, sentences: int) -> dict:
    """The row as if the reader had read only the windows of the best `sentences` sentences after the selector."""
    return row | {"read": row["reads"][sentences]}


def selector_candidates() -> int:
    from config import load_settings

    return load_settings().selector_candidates


def reader_lifts(read: np.ndarray, weight: float) -> np.ndarray:
    """How far each read sentence rises above the ranker's score: `weight` x its reader score's lead over
    the lowest read (never negative); 0 for those not read (-inf)."""
    seen = np.isfinite(read)
    if not seen.any():
        return np.zeros(len(read))
    return np.where(seen, weight * (np.where(seen, read, 0.0) - read[seen].min()), 0.0)


def selector_lifts(row: dict, selector: Selector) -> np.ndarray:
    lifts = np.zeros(len(row["scores"]))
    lifts[row["selector_read"]] = selector.calibration.lifts(row["selector_logits"])
    return lifts


def lifted(row: dict, weight: float, with_selector: Selector | None) -> np.ndarray:
    """What the answer's order follows: ranker score + the reader's lift (+ the selector's, if given)."""
    combined = row["scores"] + reader_lifts(row["read"], weight)
    return combined + selector_lifts(row, with_selector) if with_selector is not None else combined


def chosen(row: dict, weight: float, with_selector: Selector | None) -> int:
    """The sentence put first."""
    return int(np.argmax(lifted(row, weight, with_selector)))


def top_hit(rows: list[dict], weight: float, with_selector: Selector | None = None) -> float:
    """Share of in-corpus questions whose first sentence holds the answer."""
    return float(np.mean([row["holds"][chosen(row, weight, with_selector)] for row in rows if row["in_corpus"]]))


def reader_evidence(row: dict, weight: float, with_selector: Selector | None) -> np.ndarray:
    """The refusal's evidence with the reader, as answering computes it (bot/answering/answer.py: stacked): the probability
    before it (the selector's, with it; else the ranker's) as log-odds, the reader's score of the best read
    sentence and its lead over the other read ones."""
    seen = np.flatnonzero(np.isfinite(row["read"]))
    before = row["ranker_probability"] if with_selector is None else row["selector_probability"]
    if not len(seen):
        return np.array([log_odds(before), -10.0, 0.0])
    return Calibration.stack_evidence(before, row["read"][seen], int(np.argmax(lifted(row, weight, with_selector)[seen])))


def selector_evidence(row: dict, selector: Selector) -> np.ndarray:
    lifted = row["scores"][row["selector_read"]] + selector.calibration.lifts(row["selector_logits"])
    return Calibration.stack_evidence(row["ranker_probability"], row["selector_logits"], int(np.argmax(lifted)))


def measure(directory: Path) -> dict:
    reader, selector = Reader(directory, calibrated=False), Selector()
    started = time.time()
    sets = calibration_sets(lambda collected, ranker, keep: measured_rows(collected, ranker, reader, selector, keep))
    seconds = (time.time() - started) / sum(map(len, sets.values()))
    return {"seconds_per_question": round(seconds, 4)} | report_on(sets, selector) | {"calibration": calibrate(sets, selector, directory)}


def calibrate(sets: dict[str, list[dict]], selector: Selector, directory: Path) -> dict:
    """How the reader joins the selector, chosen on the TyDi questions: the windows of how many of the best
    sentences after the selector it reads (at most MAX_SENTENCES, for speed) and how much its score weighs; then the stacked
    refusal and the threshold that answers 95% of each set's in-corpus questions. Written beside the model."""
    grid = [(k, w, top_hit([reading_first(row, k) for row in sets["tydi"]], w, selector))
            for k in range(1, MAX_SENTENCES + 1) for w in WEIGHTS if w < 100]
    sentences, weight, hit = max(grid, key=lambda row: (row[2], -row[0]))
    refusal = fit_refusal_on({name: (np.array([reader_evidence(reading_first(row, sentences), weight, selector) for row in rows]),
                                     np.array([float(row["in_corpus"]) for row in rows])) for name, rows in sets.items()})
    (directory / "calibration.json").write_text(json.dumps({
        "logit_weight": weight, "refusal_features": ["selector_refusal_logit", "best_logit", "logit_margin"],
        "refusal_weights": [round(w, 6) for w in refusal["refusal_weights"]], "refusal_bias": round(refusal["refusal_bias"], 6),
    }, indent=1) + "\n", encoding="utf-8")
    write_checksum(directory, FILES)
    set_defaults(reader_sentences=sentences, reader_min_probability=refusal["min_probability"])
    squad_hit = top_hit([reading_first(row, sentences) for row in sets["squad"]], weight, selector)
    return {"sentences": sentences, "weight": weight, "tydi_top_hit": round(hit, 4), "squad_top_hit": round(squad_hit, 4),
            "min_probability": refusal["min_probability"], "refusal": refusal["calibration"]}


def report_on(sets: dict[str, list[dict]], selector: Selector) -> dict:
    """Top hits by set (ranker, selector, reader by passages read and weight) and the refusals fitted on them."""
    report: dict = {"questions": {name: len(rows) for name, rows in sets.items()}}
    for name, rows in sets.items():
        report[name] = {"ranker": round(top_hit(rows, 0.0), 4), "selector": round(top_hit(rows, 0.0, selector), 4)}
        for k in range(1, MAX_SENTENCES + 1):
            cut = [reading_first(row, k) for row in rows]
            report[name][f"reader_{k}"] = {str(w): round(top_hit(cut, w), 4) for w in WEIGHTS}
            report[name][f"selector_and_reader_{k}"] = {str(w): round(top_hit(cut, w, selector), 4) for w in WEIGHTS}
    flags = {name: np.array([float(row["in_corpus"]) for row in rows]) for name, rows in sets.items()}
    report["refusal_selector"] = fit_refusal_on(
        {name: (np.array([selector_evidence(row, selector) for row in rows]), flags[name]) for name, rows in sets.items()})["calibration"]
    for k in range(1, MAX_SENTENCES + 1):
        for weight in (0.5, 1.0, 2.0):
            for label, helper in (("reader", None), ("selector_and_reader", selector)):
                report[f"refusal_{label}_{k}_{weight}"] = fit_refusal_on(
                    {name: (np.array([reader_evidence(reading_first(row, k), weight, helper) for row in rows]), flags[name])
                     for name, rows in sets.items()})["calibration"]
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate-only", action="store_true",
                        help="measure and calibrate the shipped reader (bot/answering/models/reader) again, without training or exporting")
    parser.add_argument("--export-only", action="store_true",
                        help=f"export the trained reader ({WORK.relative_to(ROOT)}/trained) again, then measure and calibrate it, without training")
    arguments = parser.parse_args()
    require_data("tydiqa-en-train.json", "squad2-train-10.json")
    trained, results = WORK / "trained", RESULTS / "reader-training.json"
    stats: dict = {"seed": SEED, "epochs": EPOCHS, "batch": BATCH, "learning_rate": LEARNING_RATE}
    if arguments.calibrate_only or arguments.export_only:  # keep the training run's own figures
        stats = {k: v for k, v in json.loads(results.read_text(encoding="utf-8")).items() if k != "measured"}
    else:
        examples = training_examples()
        stats |= {"examples": len(examples), "without_answer": sum(e.answer is None for e in examples)}
        print(json.dumps(stats), file=sys.stderr)
        stats |= train(examples, trained)
    if not arguments.calibrate_only:
        export(trained, MODEL_DIR)
        stats["per_channel"] = PER_CHANNEL
    stats["measured"] = measure(MODEL_DIR)
    stats["model_sha256"] = file_sha256(MODEL_DIR / "model.onnx")
    RESULTS.mkdir(exist_ok=True)
    results.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(stats, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
