"""Verbatim's answer() side by side with the usual retrieval recipes, in one process, on two question sets.

- SQuAD: squad2-dev-a + distractors (28 documents, 871 paragraphs), its answerable questions.
- Real questions: TyDi QA English, the held-out *test* slice (articles never trained or
  calibrated on), every article indexed, its questions.
Every peer embeds with the same engine as Verbatim (all-MiniLM-L6-v2, ONNX int8), so
the columns compare recipes, not engines. Each peer's top chunk is its "quote".
Writes bench/results/peers.md.  Usage: make bench-peers
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from common import CACHE, Stopwatch, machine, percentile, require_data, write_results

from bot.answering.answer import Answerer
from bot.cli.evaluation import load_eval_set, select_slice, write_eval_corpus
from config import load_settings
from index.build import build_index
from index.embedding.embed import OnnxEmbedder
from index.embedding.engine import _cached_export

qa_path, distractor_path, tydi_path = require_data("squad2-dev-a.json", "squad2-distractors.json", "tydiqa-en-train.json")
model = OnnxEmbedder(_cached_export(load_settings(cache_dir=CACHE)))


class Dataset:
    def __init__(self, name, eval_set, distractors):
        self.name, self.eval_set, self.distractors = name, eval_set, distractors
        self.questions = [q for q in eval_set.questions if q.answers]
        self.documents = {**eval_set.articles, **{f"d-{t}": text for d in distractors for t, text in d.articles.items()}}
        self.paragraphs = [p for text in self.documents.values() for p in text.split("\n\n") if p.strip()]


def evaluate(data: Dataset, name: str, build, ask) -> dict:
    """build() -> state; ask(state, question) -> list of quote texts, best first."""
    with Stopwatch() as build_time:
        state = build()
    ask(state, "warm-up question")
    hits1 = hits3 = hits300 = 0
    shown_first, shown_all, latencies = [], [], []
    for question in data.questions:
        started = time.perf_counter()
        quotes = ask(state, question.question)
        latencies.append((time.perf_counter() - started) * 1000)
        hits1 += bool(quotes) and any(g in quotes[0] for g in question.answers)
        hits300 += bool(quotes) and any(g in quotes[0][:300] for g in question.answers)
        hits3 += any(g in q for q in quotes[:3] for g in question.answers)
        if quotes:
            shown_first.append(len(quotes[0]))
            shown_all.append(sum(len(q) for q in quotes[:3]))
    n = len(data.questions)
    row = {
        "peer": name, "hit@1": hits1 / n, "hit@1 first 300": hits300 / n, "hit@3": hits3 / n,
        "first quote chars": float(np.mean(shown_first)), "chars shown (3)": float(np.mean(shown_all)),
        "p50 ms": percentile(latencies, 50), "p95 ms": percentile(latencies, 95), "build s": build_time.seconds,
    }
    print(row, flush=True)
    return row


def verbatim_build(data: Dataset, scratch: Path, selector: bool = True):
    def build():
        corpus = scratch / "corpus"
        if not corpus.exists():
            write_eval_corpus(corpus, data.eval_set, data.distractors, set())
        settings = load_settings(corpus_dir=corpus, index_dir=scratch / f"index-{selector}", cache_dir=CACHE, selector=selector)
        build_index(settings, force=True)
        return Answerer(settings)
    return build


def verbatim_ask(answerer, question):
    return [quote.text for quote in answerer.answer(question).quotes]


def langchain_build(data: Dataset):
    from langchain_community.vectorstores import FAISS
    from langchain_core.embeddings import Embeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    class Adapter(Embeddings):
        def embed_documents(self, texts):
            return model.embed(texts).tolist()

        def embed_query(self, text):
            return model.embed([text])[0].tolist()

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    chunks = [chunk for text in data.documents.values() for chunk in splitter.split_text(text)]
    return FAISS.from_texts(chunks, Adapter())


def langchain_ask(store, question):
    return [d.page_content for d in store.similarity_search(question, k=3)]


def bm25_build(data: Dataset):
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(data.paragraphs, stopwords="en", show_progress=False), show_progress=False)
    return retriever


def bm25_ranking(retriever, question, k=10):
    import bm25s

    ids, _ = retriever.retrieve(bm25s.tokenize([question], stopwords="en", show_progress=False), k=k, show_progress=False)
    return list(ids[0])


def dense_build(data: Dataset):
    import faiss

    index = faiss.IndexFlatIP(model.dimension)
    index.add(model.embed(data.paragraphs))
    return index


def dense_ranking(index, question, k=10):
    _, ids = index.search(model.embed([question]), k)
    return [int(i) for i in ids[0]]


def hybrid_ask(data: Dataset, state, question):
    retriever, index = state
    scores: dict[int, float] = {}
    for ranking in (bm25_ranking(retriever, question), dense_ranking(index, question)):
        for rank, pid in enumerate(ranking):
            scores[pid] = scores.get(pid, 0) + 1 / (60 + rank)
    return [data.paragraphs[i] for i in sorted(scores, key=lambda i: -scores[i])[:3]]


def run(data: Dataset) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        rows.append(evaluate(data, "**Verbatim answer()**", verbatim_build(data, Path(scratch)), verbatim_ask))
        rows.append(evaluate(data, "Verbatim answer(), selector off (the ranker alone)", verbatim_build(data, Path(scratch), False),
                             verbatim_ask))
    rows.append(evaluate(data, "LangChain recursive 1000/200 + FAISS", lambda: langchain_build(data), langchain_ask))
    rows.append(evaluate(data, "dense paragraphs, FAISS flat", lambda: dense_build(data),
                         lambda s, q: [data.paragraphs[i] for i in dense_ranking(s, q, 3)]))
    rows.append(evaluate(data, "bm25s paragraphs", lambda: bm25_build(data),
                         lambda s, q: [data.paragraphs[i] for i in bm25_ranking(s, q, 3)]))
    rows.append(evaluate(data, "RRF(bm25s, dense) paragraphs", lambda: (bm25_build(data), dense_build(data)),
                         lambda s, q: hybrid_ask(data, s, q)))
    return rows


def main() -> None:
    squad = Dataset("SQuAD 2.0 dev (8 articles + 570 distractor paragraphs)", load_eval_set(qa_path), [load_eval_set(distractor_path)])
    tydi = Dataset("Real questions: TyDi QA English, held-out test slice", select_slice(load_eval_set(tydi_path), "test"), [])
    header = ["peer", "hit@1", "hit@1 first 300", "hit@3", "first quote chars", "chars shown (3)", "p50 ms", "p95 ms", "build s"]
    lines = [
        f"Measured by `make bench-peers` on {machine()}, {time.strftime('%Y-%m-%d')}. Every peer embeds with "
        "all-MiniLM-L6-v2 through the same ONNX int8 engine as Verbatim; Verbatim's refusals count as misses.",
    ]
    for data in (tydi, squad):
        rows = run(data)
        lines += [
            "",
            f"**{data.name}**: {len(data.documents)} documents, {len(data.paragraphs)} paragraphs, "
            f"{len(data.questions)} answerable questions.",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        for row in rows:
            lines.append("| " + " | ".join(row["peer"] if h == "peer" else f"{row[h]:.3f}" if "hit" in h else f"{row[h]:.1f}" for h in header) + " |")
    write_results("peers.md", lines)


if __name__ == "__main__":
    main()
