"""Train the answer selector: a small cross-encoder that scores whether a sentence answers a question.

`make train-selector` runs this, after `make fit-ranker`. It is initialised from the bundled
all-MiniLM-L6-v2 (its first LAYERS layers: all 6), trained on real questions (TyDi QA
English, the *train* slice less its fold STACK_FOLD) and on the first SQUAD_ARTICLES of the
10 SQuAD 2.0 train articles, exported to ONNX, quantized to int8 (PER_CHANNEL) and written to
bot/answering/models/selector/ with its checksum (`make export-selector` exports the last run's weights again). What it
never sees is what its place beside the ranker is fitted on (`make calibrate-selector`: TyDi's fold
STACK_FOLD and calib slice, the last SQuAD train articles), and nothing from TyDi's test slice or SQuAD's
dev set is read at all.

Each question becomes a group of the candidates it will meet when answering: retrieval's
sentences for it (from the ranker's cached candidates, `make fit-ranker`), the best-ranked one
that holds the answer and the GROUP - 1 best-ranked ones that don't -- what the ranker confuses
it with. A question whose article is not in its index gives a group with no positive.

Experiments (a `Variant`), written to var/selector/<variant>/ rather than bot/answering/models/selector/ and not shipped:
`--context N` (`make try-selector-context`) trains one that also reads the last N characters before
each sentence; `--layers N` (`make try-selector-layers`: 4) keeps the first N of MiniLM's 6 layers;
`--epochs N` (`make try-selector-epochs`: 3) trains longer; `--shelf-negatives` (`make try-selector-shelf-negatives`)
adds out-of-corpus groups mined from big shelves and on-topic unanswerable questions (`shelf_groups`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# OpenMP threads that spin while waiting crawl when anything else runs on the 2 cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: its shared common.py
from common import DATA, RESULTS, ROOT, bucket, require_data  # noqa: E402  (also puts the project on sys.path)

from fit_ranker import FOLD_HOLDOUT, cached_hits, holds_answer, search_candidates, train_folds  # noqa: E402

from bot.answering.ranker import Ranker  # noqa: E402
from bot.answering.selector import MAX_TOKENS, MODEL_DIR, context_before, pair_text, write_checksum  # noqa: E402
from bot.cli.evaluation import EvalQuestion, EvalSet, load_eval_set, select_slice  # noqa: E402
from index.embedding.embed import resolve_model  # noqa: E402
from index.embedding.onnx_export import preoptimize, quantize_int8  # noqa: E402
from index.storage.store import file_sha256  # noqa: E402

WORK = ROOT / "var" / "selector"
SEED = 13
LAYERS = 6  # all of them: 4 measured worse (make try-selector-layers)
GROUP = 6  # candidates per question: the positive and five of the ranker's best negatives
GROUPS_PER_STEP = 4
LEARNING_RATE = 5e-5
EPOCHS = 2
CHECKPOINT_EVERY = 500
# Held out of training, for fitting how the selector's logit joins the ranker's score.
STACK_FOLD = 3
SQUAD_ARTICLES = 6
# Out-of-corpus groups mined from shelves of thousands of passages, at most (`--shelf-negatives`).
SHELF_GROUPS = 1200
# A model that reads context before each sentence reads up to this many tokens of a pair.
CONTEXT_MAX_TOKENS = 128
# int8 with one scale per output channel of each weight matrix rather than one per matrix: on the calibration
# questions 0.781 of TyDi's best sentences hold the answer against 0.766 (fp32: 0.786), `make bench-selector-quantization`.
PER_CHANNEL = True


@dataclass(frozen=True)
class Group:
    question: str
    candidates: tuple[str, ...]  # pair texts
    positive: int  # index into candidates, -1 when none answers


def pair(item: dict, hits: list, index: int, context: int = 0) -> str:
    """What the selector reads of a cached question's candidate `index` (with `context` characters before it)."""
    before = context_before(item["before"][index], context) if context else None
    return pair_text(item["titles"][index], hits[index].text, before)


@dataclass(frozen=True)
class Variant:
    """An experiment's departure from the shipped selector (the default is the shipped one)."""

    context: int = 0  # characters before each sentence it also reads
    layers: int = LAYERS  # of MiniLM's 6 transformer layers, the first this many
    epochs: int = EPOCHS
    shelf_negatives: bool = False  # also groups of out-of-corpus questions on big shelves, and on-topic unanswerables

    @property
    def suffix(self) -> str:
        """What names its results files and work directories (nothing for the shipped one)."""
        return ((f"-context-{self.context}" if self.context else "") + (f"-layers-{self.layers}" if self.layers != LAYERS else "")
                + (f"-epochs-{self.epochs}" if self.epochs != EPOCHS else "")
                + ("-shelf-negatives" if self.shelf_negatives else ""))

    @property
    def directory(self) -> Path:
        """Where it is written: bot/answering/models/selector/ for the shipped one, var/selector/<suffix>/ for an experiment."""
        return WORK / self.suffix.lstrip("-") if self.suffix else MODEL_DIR

    @property
    def max_tokens(self) -> int:
        return CONTEXT_MAX_TOKENS if self.context else MAX_TOKENS


def add_variant_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    """The flags that name a Variant (`verb`: what the script does with it, for their help)."""
    parser.add_argument("--context", type=int, default=0, metavar="N",
                        help=f"{verb} a selector that reads N characters before each sentence (an experiment)")
    parser.add_argument("--layers", type=int, default=LAYERS, choices=range(1, 7), metavar="N",
                        help=f"{verb} a selector that keeps the first N of MiniLM's 6 layers (an experiment)")
    parser.add_argument("--epochs", type=int, default=EPOCHS, metavar="N",
                        help=f"{verb} a selector of N epochs' training instead of {EPOCHS} (an experiment)")
    parser.add_argument("--shelf-negatives", action="store_true",
                        help=f"{verb} a selector also trained on questions asked of shelves of thousands of passages "
                             "that don't hold their article, and on-topic unanswerable questions (an experiment)")


def variant_of(arguments: argparse.Namespace) -> Variant:
    return Variant(arguments.context, arguments.layers, arguments.epochs, arguments.shelf_negatives)


def candidate_groups(collected: dict, ranker: Ranker, keep=lambda item: True, context: int = 0) -> list[Group]:
    """One group per question of `collected` (search_candidates' output) that `keep` accepts."""
    groups = []
    for item in filter(keep, collected["questions"]):
        hits = cached_hits(item)
        order = np.argsort(-ranker.scores(item["question"], hits), kind="stable")
        held = holds_answer(item, hits)
        holds = [held[i] for i in order]
        positives = [i for i, held in zip(order, holds) if held]
        if item["in_corpus"] and not positives:
            continue  # retrieval never found it: nothing to tell apart
        negatives = [i for i, held in zip(order, holds) if not held][: GROUP - (1 if positives else 0)]
        chosen = positives[:1] + negatives
        texts = tuple(pair(item, hits, i, context) for i in chosen)
        groups.append(Group(item["question"], texts, 0 if positives else -1))
    return groups


def mine_groups(context: int = 0, shelf_negatives: bool = False) -> list[Group]:
    """The training groups: TyDi's train folds but STACK_FOLD, and the first SQUAD_ARTICLES of SQuAD train
    (with `shelf_negatives`, also `shelf_groups`)."""
    ranker = Ranker.load()
    tydi = select_slice(load_eval_set(DATA / "tydiqa-en-train.json"), "train")
    groups = []
    for number, part in enumerate(train_folds(tydi)):
        if number != STACK_FOLD:
            collected = search_candidates(f"tydi-train-fold{number}", part, set(list(part.articles)[-FOLD_HOLDOUT:]))
            groups += candidate_groups(collected, ranker, context=context)
    squad = load_eval_set(DATA / "squad2-train-10.json")
    trained_on = set(list(squad.articles)[:SQUAD_ARTICLES])
    groups += candidate_groups(search_candidates("squad-train", squad, set()), ranker,
                               lambda item: item["article"] in trained_on, context)
    return groups + (shelf_groups(ranker, tydi, squad, trained_on, context) if shelf_negatives else [])


def shelf_groups(ranker: Ranker, train: EvalSet, squad: EvalSet, trained_on: set[str], context: int = 0) -> list[Group]:
    """Groups with no positive, of what a big shelf offers a question it can't answer: each training fold's
    questions asked of ~2,000 other passages (TyDi train's even bucket and the SQuAD train articles trained on,
    the distractors `make calibrate-shelves` fits with; never the measuring side's), SHELF_GROUPS of them
    at most; and SQuAD train's on-topic unanswerable questions asked of their own article (`train`: TyDi's train
    slice; `trained_on`: the SQuAD articles the selector trains on)."""
    pool = {**{t: x for t, x in train.articles.items() if bucket(t) == 0},
            **{t: x for t, x in squad.articles.items() if t in trained_on}}
    groups = []
    for number, part in enumerate(train_folds(train)):
        if number != STACK_FOLD:
            shelf = EvalSet({**part.articles, **{t: x for t, x in pool.items() if t not in part.articles}}, part.questions)
            collected = search_candidates(f"tydi-train-fold{number}-off-big-shelf", shelf, set(part.articles))
            groups += candidate_groups(collected, ranker, context=context)
    random.Random(SEED).shuffle(groups)
    # An impossible answer, so search_candidates keeps the question and no candidate holds it.
    never = "\x00no answer\x00"
    unanswerable = tuple(EvalQuestion(q.question, (never,), q.article) for q in squad.questions
                         if not q.answers and q.article in trained_on)
    collected = search_candidates("squad-train-unanswerable", EvalSet({t: squad.articles[t] for t in trained_on}, unanswerable), set())
    for item in collected["questions"]:
        item["in_corpus"] = False
    return groups[:SHELF_GROUPS] + candidate_groups(collected, ranker, context=context)


def train(groups: list[Group], output: Path, variant: Variant = Variant()) -> dict:
    """Fine-tune the cut MiniLM as a cross-encoder: pointwise BCE plus a listwise loss per group."""
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    max_length = variant.max_tokens
    encoder = CrossEncoder(resolve_model("all-MiniLM-L6-v2"), num_labels=1, max_length=max_length)
    model, tokenizer = encoder.model, encoder.tokenizer
    model.bert.encoder.layer = model.bert.encoder.layer[:variant.layers]
    model.config.num_hidden_layers = variant.layers
    rng = random.Random(SEED)

    def epoch_batches(epoch: int) -> list[list[Group]]:
        order = list(range(len(groups)))
        rng.shuffle(order)
        return [[groups[i] for i in order[step * GROUPS_PER_STEP : (step + 1) * GROUPS_PER_STEP]]
                for step in range(len(groups) // GROUPS_PER_STEP)]

    def loss_of(batch: list[Group]):
        questions = [g.question for g in batch for _ in g.candidates]
        candidates = [c for g in batch for c in g.candidates]
        labels = torch.tensor([float(i == g.positive) for g in batch for i in range(len(g.candidates))])
        encoded = tokenizer(questions, candidates, padding=True, truncation="only_second",
                            max_length=max_length, return_tensors="pt")
        logits = model(**encoded).logits.squeeze(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        position = 0
        for group in batch:
            size = len(group.candidates)
            if group.positive >= 0:
                loss = loss + torch.nn.functional.cross_entropy(
                    logits[position : position + size].unsqueeze(0), torch.tensor([group.positive])
                ) / len(batch)
            position += size
        return loss

    steps = variant.epochs * (len(groups) // GROUPS_PER_STEP)
    return fine_tune(model, tokenizer, epoch_batches, loss_of, variant.epochs, steps, LEARNING_RATE, output, CHECKPOINT_EVERY)


def fine_tune(model, tokenizer, epoch_batches, loss_of, epochs: int, steps: int, learning_rate: float, output: Path,
              checkpoint_every: int = 0) -> dict:
    """The selector's and the reader's training loop: AdamW, warm-up over the first tenth then linear decay,
    gradients clipped at 1; `epoch_batches(epoch)` gives an epoch's batches and `loss_of(batch)` a batch's loss.
    Saves the model and tokenizer to `output` (and every `checkpoint_every` steps to output/step-N)."""
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    warmup = max(1, steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / (steps - warmup)))
    )
    model.train()
    started, losses, done = time.time(), [], 0
    for epoch in range(epochs):
        for batch in epoch_batches(epoch):
            loss = loss_of(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(float(loss.detach()))
            done += 1
            if checkpoint_every and done % checkpoint_every == 0:
                model.save_pretrained(output / f"step-{done}")
                tokenizer.save_pretrained(output / f"step-{done}")
            if done % 20 == 0:
                print(f"epoch {epoch} step {done}/{steps} loss {np.mean(losses[-20:]):.4f} "
                      f"{time.time() - started:.0f}s", file=sys.stderr, flush=True)
    model.eval()
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    return {"steps": done, "seconds": round(time.time() - started, 1), "final_loss": round(float(np.mean(losses[-100:])), 4)}


def export(trained: Path, directory: Path) -> None:
    """ONNX (one logit per pair), quantized to int8 and pre-optimized, with the tokenizer, into `directory`."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(trained).eval()
    export_onnx(model, AutoTokenizer.from_pretrained(trained), ("logits",), directory, PER_CHANNEL)
    calibration = directory / "calibration.json"
    if not calibration.exists():  # until `make calibrate-selector` fits it, loading says to run that
        calibration.write_text(json.dumps({"note": "run `make calibrate-selector`"}) + "\n", encoding="utf-8")
    write_checksum(directory)


def export_onnx(model, tokenizer, outputs: tuple[str, ...], directory: Path, per_channel: bool = False) -> None:
    """A BERT-style model's `outputs` as ONNX (opset 17, dynamic batch and length), kept in fp32 (fp32_export)
    and quantized (`quantize`) as `directory`/model.onnx, with its tokenizer as tokenizer.json."""
    import torch

    encoded = tokenizer(["a question?", "another?"], ["a sentence.", "one more sentence here."], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]

    class Outputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return tuple(out[name] for name in outputs)

    directory.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    fp32 = fp32_export(directory)
    with torch.no_grad():
        torch.onnx.export(Outputs().eval(), tuple(encoded[n] for n in names), str(fp32), input_names=names,
                          output_names=list(outputs),
                          dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, **{o: {0: "batch"} for o in outputs}},
                          opset_version=17, dynamo=False)
    quantize(fp32, directory / "model.onnx", per_channel)
    tokenizer.backend_tokenizer.save(str(directory / "tokenizer.json"))


def fp32_export(directory: Path) -> Path:
    """Where export_onnx keeps the fp32 model it quantized into `directory`."""
    return WORK / f"{directory.name}.fp32.onnx"


def fp32_to_measure(directory: Path, what: str, how: str) -> Path | None:
    """The fp32 export of the model in `directory` (`what` it is) for a quantization benchmark, or None, said on
    stderr, when the export (`how` to make it) is missing; without the shared data, exit 0 (require_data)."""
    require_data("tydiqa-en-train.json", "squad2-train-10.json")
    fp32 = fp32_export(directory)
    if not fp32.is_file():
        print(f"skipped: no fp32 export of the {what} at {fp32}: run {how} first", file=sys.stderr)
        return None
    return fp32


def variant_model(fp32: Path, per_channel: bool | None, shipped: Path, files: tuple[str, ...], directory: Path) -> None:
    """The shipped model in `shipped` (its `files`, model.onnx first) as a copy in `directory`, with `fp32` as its
    model.onnx, quantized (`quantize`) as `per_channel` says or, when None, kept in fp32; checksums written."""
    directory.mkdir(parents=True, exist_ok=True)
    if per_channel is None:
        shutil.copyfile(fp32, directory / "model.onnx")
    else:
        quantize(fp32, directory / "model.onnx", per_channel)
    for name in files[1:]:  # a model's loader checks every file's checksum, calibration's too (unread here)
        shutil.copyfile(shipped / name, directory / name)
    write_checksum(directory, files)


def quantize(fp32: Path, target: Path, per_channel: bool = False) -> None:
    """The ONNX model `fp32` quantized to int8 as index builds quantize the embedder (one scale per weight matrix,
    or per output channel) and pre-optimized, as `target`."""
    quantize_int8(fp32, target, per_channel)
    preoptimize(target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, metavar="CHECKPOINT",
                        help="only export a checkpoint (e.g. ../var/selector/trained/step-500, from bench/)")
    add_variant_arguments(parser, "train")
    arguments = parser.parse_args()
    variant = variant_of(arguments)
    output = variant.directory
    if arguments.export:
        export(arguments.export, output)
        record_export(arguments.export, variant)
        return 0
    require_data("tydiqa-en-train.json", "squad2-train-10.json")
    WORK.mkdir(parents=True, exist_ok=True)
    groups = mine_groups(variant.context, variant.shelf_negatives)
    stats = {"seed": SEED, "layers": variant.layers, "epochs": variant.epochs, "groups": len(groups),
             "groups_without_answer": sum(g.positive < 0 for g in groups), "pairs": sum(len(g.candidates) for g in groups)}
    print(json.dumps(stats), file=sys.stderr)
    trained = WORK / f"trained{variant.suffix}"
    stats |= train(groups, trained, variant)
    RESULTS.mkdir(exist_ok=True)
    training_results(variant).write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    export(trained, output)
    record_export(trained, variant)
    return 0


def training_results(variant: Variant) -> Path:
    return RESULTS / f"selector-training{variant.suffix}.json"


def record_export(checkpoint: Path, variant: Variant) -> None:
    """Add what was exported, from which checkpoint and how quantized, to the variant's training results."""
    path = training_results(variant)
    stats = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    checkpoint = checkpoint.resolve()
    origin = checkpoint.relative_to(ROOT).as_posix() if checkpoint.is_relative_to(ROOT) else str(checkpoint)
    stats |= {"exported_from": origin, "per_channel": PER_CHANNEL,
              "model_sha256": file_sha256(variant.directory / "model.onnx")}
    path.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(stats), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
