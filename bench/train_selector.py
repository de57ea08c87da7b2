"""Train the answer selector: a small cross-encoder that scores whether a sentence answers a question.

`make train-selector` runs this. It is initialised from the bundled all-MiniLM-L6-v2
(cut to its first LAYERS layers), trained on the *train* slice of TyDi QA English
(real questions) and on 10 SQuAD 2.0 train articles, exported to ONNX, quantized to
int8 and written to bot/selector/ with its checksum and model card. Nothing from
TyDi's calib or test slices, nor SQuAD's dev set, is trained on.

Each question becomes a group: the sentence holding the answer (if any) and hard
negatives -- the other sentences of its passage, and the sentences of other
passages that MiniLM finds most similar to the question (what retrieval confuses
it with). SQuAD 2.0's unanswerable questions give groups with no positive.
"""

from __future__ import annotations

import os
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# OpenMP threads that spin while waiting crawl when anything else runs on the 2 cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from common import CACHE, DATA, RESULTS, ROOT  # noqa: E402  (also puts the project on sys.path)

from bot.evaluation import article_file_name, article_slice  # noqa: E402
from bot.selector import MAX_TOKENS, MODEL_DIR, Calibration, pair_text, write_checksum  # noqa: E402
from config import load_settings  # noqa: E402
from index.embed import OnnxEmbedder, resolve_model  # noqa: E402
from index.engine import _cached_export  # noqa: E402
from index.sentences import paragraphs, sentences  # noqa: E402
from index.store import file_sha256  # noqa: E402

WORK = ROOT / "var" / "selector"
SEED = 13
LAYERS = 3
MINED = 6  # candidates mined per question: one positive and five negatives
GROUP = 5  # candidates trained on per question (2 cores allow ~1.5 s a step: bench/results/selector-training.json)
GROUPS_PER_STEP = 4
SAME_PASSAGE_NEGATIVES = 3
LEARNING_RATE = 5e-5
EPOCHS = 1
CHECKPOINT_EVERY = 300


@dataclass(frozen=True)
class Group:
    question: str
    candidates: tuple[str, ...]  # pair texts
    positive: int  # index into candidates, -1 when none answers


@dataclass(frozen=True)
class _Item:
    question: str
    title: str
    paragraph: str  # the passage's key
    sentence_texts: tuple[str, ...]
    answer_sentences: frozenset[int]
    answerable: bool


def read_items(path: Path, slice_name: str | None) -> list[_Item]:
    """Questions with the sentences of their passage and which of them hold the answer."""
    items = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        title = article["title"]
        if slice_name and article_slice(article_file_name(title)) != slice_name:
            continue
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            spans = [s for p in paragraphs(context) for s in sentences(context, p)]
            texts = tuple(context[s.start : s.end] for s in spans)
            for qa in paragraph["qas"]:
                impossible = bool(qa.get("is_impossible"))
                holding = set()
                for answer in [] if impossible else qa["answers"]:
                    start, end = answer["answer_start"], answer["answer_start"] + len(answer["text"])
                    holding |= {i for i, s in enumerate(spans) if s.start <= start < s.end or (start < s.start < end)}
                if not impossible and not holding:
                    continue
                items.append(_Item(qa["question"], title.replace("_", " "), title + "\x00" + context[:80], texts, frozenset(holding), not impossible))
    return items


def make_groups(items: list[_Item], rng: random.Random) -> list[Group]:
    """One group per question: positive first is shuffled away; hard negatives from MiniLM."""
    # MiniLM through the same int8 ONNX export Verbatim retrieves with: what retrieval confuses is what we want.
    embedder = OnnxEmbedder(_cached_export(load_settings(cache_dir=CACHE)))
    pool = [(item.paragraph, item.title, text) for item in _unique_passages(items) for text in item.sentence_texts]
    print(f"embedding {len(pool)} sentences and {len(items)} questions", file=sys.stderr)
    pool_vectors = embedder.embed([text for _, _, text in pool])
    question_vectors = embedder.embed([item.question for item in items])
    groups = []
    for item, vector in zip(items, question_vectors):
        positives = sorted(item.answer_sentences)
        own = [i for i in range(len(item.sentence_texts)) if i not in item.answer_sentences]
        rng.shuffle(own)
        negatives = [pair_text(item.title, item.sentence_texts[i]) for i in own[:SAME_PASSAGE_NEGATIVES]]
        order = np.argsort(-(pool_vectors @ vector))
        for index in order[:40]:
            paragraph, title, text = pool[index]
            if paragraph == item.paragraph:
                continue
            negatives.append(pair_text(title, text))
            if len(negatives) >= MINED - (1 if positives else 0):
                break
        if positives:
            positive = pair_text(item.title, item.sentence_texts[rng.choice(positives)])
            candidates = [positive, *negatives][:MINED]
            rng.shuffle(candidates)
            groups.append(Group(item.question, tuple(candidates), candidates.index(positive)))
        else:
            groups.append(Group(item.question, tuple(negatives[:MINED]), -1))
    return groups


def _trimmed(group: Group) -> Group:
    """The group cut to GROUP candidates, keeping its positive (mined groups hold MINED)."""
    keep = [i for i in range(len(group.candidates)) if i == group.positive][:1]
    keep += [i for i in range(len(group.candidates)) if i != group.positive][: GROUP - len(keep)]
    keep.sort()
    positive = keep.index(group.positive) if group.positive >= 0 else -1
    return Group(group.question, tuple(group.candidates[i] for i in keep), positive)


def _unique_passages(items: list[_Item]) -> list[_Item]:
    seen: dict[str, _Item] = {}
    for item in items:
        seen.setdefault(item.paragraph, item)
    return list(seen.values())


def train(groups: list[Group], output: Path) -> dict:
    """Fine-tune the cut MiniLM as a cross-encoder: pointwise BCE plus a listwise loss per group."""
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    encoder = CrossEncoder(resolve_model("all-MiniLM-L6-v2"), num_labels=1, max_length=MAX_TOKENS)
    model, tokenizer = encoder.model, encoder.tokenizer
    model.bert.encoder.layer = model.bert.encoder.layer[:LAYERS]
    model.config.num_hidden_layers = LAYERS
    steps = EPOCHS * len(groups) // GROUPS_PER_STEP
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    warmup = max(1, steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / (steps - warmup)))
    )
    rng = random.Random(SEED)
    model.train()
    started, losses = time.time(), []
    for epoch in range(EPOCHS):
        order = list(range(len(groups)))
        rng.shuffle(order)
        for step in range(len(groups) // GROUPS_PER_STEP):
            batch = [groups[i] for i in order[step * GROUPS_PER_STEP : (step + 1) * GROUPS_PER_STEP]]
            questions = [g.question for g in batch for _ in g.candidates]
            candidates = [c for g in batch for c in g.candidates]
            labels = torch.tensor([float(i == g.positive) for g in batch for i in range(len(g.candidates))])
            encoded = tokenizer(questions, candidates, padding=True, truncation="only_second",
                                max_length=MAX_TOKENS, return_tensors="pt")
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
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(float(loss.detach()))
            if step and step % CHECKPOINT_EVERY == 0:
                model.save_pretrained(output / f"step-{step}")
                tokenizer.save_pretrained(output / f"step-{step}")
            if step % 20 == 0:
                print(f"epoch {epoch} step {step}/{steps} loss {np.mean(losses[-20:]):.4f} "
                      f"{time.time() - started:.0f}s", file=sys.stderr, flush=True)
    model.eval()
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    return {"steps": steps, "seconds": round(time.time() - started, 1), "final_loss": round(float(np.mean(losses[-100:])), 4)}


def export(trained: Path, directory: Path) -> None:
    """ONNX (one logit per pair), quantized to int8, with the tokenizer, into `directory`."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(trained).eval()
    tokenizer = AutoTokenizer.from_pretrained(trained)
    encoded = tokenizer(["a question?", "another?"], ["a sentence.", "one more sentence here."], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    directory.mkdir(parents=True, exist_ok=True)
    fp32 = WORK / "selector.fp32.onnx"
    with torch.no_grad():
        torch.onnx.export(Logits().eval(), tuple(encoded[n] for n in names), str(fp32), input_names=names,
                          output_names=["logits"], dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "logits": {0: "batch"}},
                          opset_version=17, dynamo=False)
    quantize_dynamic(str(fp32), str(directory / "model.onnx"), weight_type=QuantType.QInt8)
    tokenizer.backend_tokenizer.save(str(directory / "tokenizer.json"))
    calibration = directory / "calibration.json"
    if not calibration.exists():  # `make calibrate-selector` replaces it
        calibration.write_text(json.dumps(asdict(Calibration()), indent=2) + "\n", encoding="utf-8")
    write_checksum(directory)


def main() -> int:
    if sys.argv[1:2] == ["--export"]:  # export a checkpoint (e.g. var/selector/trained/step-300)
        export(Path(sys.argv[2]), MODEL_DIR)
        return 0
    if not (DATA / "tydiqa-en-train.json").exists():
        print("shared data not found: skipping", file=sys.stderr)
        return 0
    rng = random.Random(SEED)
    WORK.mkdir(parents=True, exist_ok=True)
    items = read_items(DATA / "tydiqa-en-train.json", "train") + read_items(DATA / "squad2-train-10.json", None)
    cached = WORK / f"groups-{SEED}-{MINED}.json"
    if cached.exists():
        groups = [Group(g["question"], tuple(g["candidates"]), g["positive"]) for g in json.loads(cached.read_text())]
    else:
        groups = make_groups(items, rng)
        cached.write_text(json.dumps([g.__dict__ for g in groups]), encoding="utf-8")
    stats = {"seed": SEED, "layers": LAYERS, "groups": len(groups), "unanswerable_groups": sum(g.positive < 0 for g in groups),
             "pairs": sum(len(g.candidates) for g in groups)}
    groups = [_trimmed(group) for group in groups]
    print(json.dumps(stats), file=sys.stderr)
    stats |= train(groups, WORK / "trained")
    export(WORK / "trained", MODEL_DIR)
    stats["model_sha256"] = file_sha256(MODEL_DIR / "model.onnx")
    (WORK / "training.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "selector-training.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    print(json.dumps(stats), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
