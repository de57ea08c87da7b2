"""A 1,000-document corpus from SQuAD paragraphs, shared by the incremental and Discord benchmarks."""

from __future__ import annotations

from pathlib import Path

from common import require_data

from bot.cli.evaluation import load_eval_set


def write_1000(directory: Path) -> list[Path]:
    """Document i joins two SQuAD paragraphs (871 distinct ones exist), so no two documents are equal."""
    qa_path, distractor_path = require_data("squad2-dev-a.json", "squad2-distractors.json")
    paragraphs = [p for s in (load_eval_set(qa_path), load_eval_set(distractor_path))
                  for text in s.articles.values() for p in text.split("\n\n") if p.strip()]
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(1000):
        path = directory / f"doc{i:04d}.txt"
        path.write_text(paragraphs[i % len(paragraphs)].strip() + "\n\n" + paragraphs[(7 * i + 3) % len(paragraphs)].strip() + "\n", encoding="utf-8")
        paths.append(path)
    return paths
