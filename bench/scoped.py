"""Scoped questions: asked about one small document in a corpus of many, does the answer come from it?

Every SQuAD paragraph (dev articles plus distractors) is its own document. Each answerable
question whose gold answer appears in exactly one paragraph of its article is asked three ways:
over the whole corpus, with `sources=[that paragraph's document]` (restricted before ranking, as
shipped), and as the global candidates filtered to that document (what restricting after ranking
would give). Quote-hit@1: the first quote holds a gold answer.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from common import CACHE, Stopwatch, machine, median, percentile, require_data, write_results

from bot.answering.answer import Answerer
from bot.cli.evaluation import load_eval_set
from config import load_settings
from index.build import build_index

QUESTIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 400
WHOLE, SCOPED, FILTERED = "whole corpus", "scoped (restricted before ranking)", "global candidates filtered"


def main() -> None:
    qa_path, distractor_path = require_data("squad2-dev-a.json", "squad2-distractors.json")
    qa, distractors = load_eval_set(qa_path), load_eval_set(distractor_path)
    with tempfile.TemporaryDirectory(prefix="verbatim-scoped-") as scratch:
        corpus = Path(scratch) / "corpus"
        corpus.mkdir()
        paragraphs: dict[str, list[str]] = {}  # article -> its documents' sources
        texts: dict[str, str] = {}
        for prefix, eval_set in (("a", qa), ("d", distractors)):
            for title, text in eval_set.articles.items():
                for number, paragraph in enumerate(p.strip() for p in text.split("\n\n") if p.strip()):
                    source = f"{prefix}-{title}-{number:03d}.txt"
                    (corpus / source).write_text(paragraph + "\n", encoding="utf-8")
                    paragraphs.setdefault(f"{prefix}:{title}", []).append(source)
                    texts[source] = paragraph
        settings = load_settings(corpus_dir=corpus, index_dir=Path(scratch) / "index", cache_dir=CACHE,
                                 embedding_cache=Path(scratch) / "embeddings.sqlite")
        with Stopwatch() as build:
            summary = build_index(settings, force=True)
        answerer = Answerer(settings)
        answerer.answer("warm-up question")
        cases = []
        for question in qa.questions:
            if not question.answers:
                continue
            holding = [s for s in paragraphs[f"a:{question.article}"] if any(g in texts[s] for g in question.answers)]
            if len(holding) == 1:
                cases.append((question, holding[0]))
        cases = cases[:QUESTIONS]
        results = {WHOLE: [], SCOPED: [], FILTERED: []}  # (from the gold document, first quote holds the answer, answered)
        latency = {WHOLE: [], SCOPED: []}
        for question, source in cases:
            def holds(text: str) -> bool:
                return any(gold in text for gold in question.answers)

            for name, sources in ((WHOLE, None), (SCOPED, [source])):
                answer = answerer.answer(question.question, sources=sources)
                first = answer.quotes[0] if answer.quotes else None
                results[name].append((first is not None and first.source == source,
                                      first is not None and holds(first.text), answer.answered))
                latency[name].append(answer.took_ms)
            candidates = [hit for hit in answerer.searcher.search(question.question) if hit.source == source]
            results[FILTERED].append((bool(candidates), bool(candidates) and holds(candidates[0].text), None))
    lines = [
        "# Scoped questions: one small document in a corpus of many",
        "",
        f"Measured by `make bench-scoped` on {machine()}: {summary.documents:,} documents (one SQuAD paragraph each, "
        f"dev articles plus distractors), {len(cases)} answerable dev questions whose gold answer is in exactly one "
        f"paragraph; candidate_passages = {settings.candidate_passages}; index built in {build.seconds:.0f} s.",
        "",
        "| asked | first quote from the gold document | first quote holds the answer | answered | latency p50 / p95 ms |",
        "|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        share = [sum(row[i] for row in rows) / len(rows) for i in (0, 1)]
        answered = f"{sum(row[2] for row in rows) / len(rows):.3f}" if name != FILTERED else "—"
        times = f"{median(latency[name]):.1f} / {percentile(latency[name], 95):.1f}" if name in latency else "—"
        lines.append(f"| {name} | {share[0]:.3f} | {share[1]:.3f} | {answered} | {times} |")
    lines += ["", "A refusal has no first quote, so for a scoped question the first column is its answered rate: "
              "every quote of a scoped answer comes from the document.",
              f"\"{FILTERED}\": the whole corpus's candidate sentences kept only where they come from the "
              "document (restricting after ranking); its first column is how often any candidate does."]
    write_results("scoped.md", lines)


if __name__ == "__main__":
    main()
