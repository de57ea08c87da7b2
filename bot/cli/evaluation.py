"""`verbatim eval`: measure answer quality on SQuAD-style questions through `answer()`."""

from __future__ import annotations

import hashlib
import json
import re
import resource
import statistics
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from bot.answering.answer import Answerer
from bot.types import Answer
from config import Settings
from index.build import Progress, SilentProgress, build_index
from index.errors import VerbatimError


class EvalDataError(VerbatimError):
    """The question file cannot be read as SQuAD JSON or JSONL."""


@dataclass(frozen=True)
class EvalQuestion:
    """A question, its gold answers (empty: unanswerable), and the article it came from."""

    question: str
    answers: tuple[str, ...]
    article: str | None = None


@dataclass(frozen=True)
class EvalSet:
    """Articles to index (title -> text) and the questions to ask."""

    articles: dict[str, str]
    questions: tuple[EvalQuestion, ...]


@dataclass(frozen=True)
class Report:
    """The figures `verbatim eval --json` prints."""

    questions: int
    quote_hit_at_1: float
    quote_hit_at_3: float
    mean_first_quote_chars: float
    mean_shown_chars: float
    answered_rate: float
    refused_rate_unanswerable: float | None
    refused_rate_out_of_corpus: float | None
    latency_ms_p50: float
    latency_ms_p95: float
    build_seconds: float
    peak_rss_mb: float


def load_eval_set(path: Path) -> EvalSet:
    """Read SQuAD v1.1/v2.0 JSON (articles and questions) or JSONL (questions only)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise EvalDataError(f"cannot read {path}: {error}") from error
    if path.suffix == ".jsonl":
        return EvalSet({}, tuple(_jsonl_questions(raw, path)))
    try:
        data = json.loads(raw)["data"]
    except (ValueError, KeyError, TypeError) as error:
        raise EvalDataError(f"{path} is neither SQuAD JSON (a 'data' list) nor .jsonl") from error
    articles: dict[str, str] = {}
    questions = []
    for number, article in enumerate(data):
        title = article_file_name(article.get("title") or f"article-{number}")
        articles[title] = "\n\n".join(p["context"].strip() for p in article["paragraphs"]) + "\n"
        for paragraph in article["paragraphs"]:
            for qa in paragraph.get("qas", []):
                answers = () if qa.get("is_impossible") else tuple(dict.fromkeys(a["text"] for a in qa["answers"]))
                questions.append(EvalQuestion(qa["question"], answers, title))
    return EvalSet(articles, tuple(questions))


# Fixed slices of a question file's articles, by a hash of the title, so the
# selector is trained on "train", its refusal calibrated on "calib", and every
# figure measured on "test", which nothing is ever fitted to.
SLICES = {"train": range(30, 100), "calib": range(20, 30), "test": range(0, 20)}


def article_slice(title: str) -> str:
    """Which fixed slice (train 70%, calib 10%, test 20%) an article belongs to."""
    bucket = int.from_bytes(hashlib.sha256(title.encode("utf-8")).digest()[:4], "big") % 100
    return next(name for name, buckets in SLICES.items() if bucket in buckets)


def select_slice(eval_set: EvalSet, name: str) -> EvalSet:
    """Only the articles (and their questions) of one fixed slice."""
    if name not in SLICES:
        raise EvalDataError(f"unknown slice {name!r}: choose one of {', '.join(SLICES)}")
    articles = {title: text for title, text in eval_set.articles.items() if article_slice(title) == name}
    questions = tuple(q for q in eval_set.questions if q.article is None or q.article in articles)
    return EvalSet(articles, questions)


def evaluate(
    eval_set: EvalSet,
    settings: Settings,
    distractors: Iterable[EvalSet] = (),
    holdout_articles: int = 0,
    limit: int | None = None,
    progress: Progress | None = None,
    workdir: Path | None = None,
) -> Report:
    """Index the articles (less `holdout_articles`) plus distractors, ask every question, score."""
    progress = progress or SilentProgress()
    with tempfile.TemporaryDirectory(prefix="verbatim-eval-", dir=workdir) as scratch:
        held_out = set(list(eval_set.articles)[len(eval_set.articles) - holdout_articles :]) if holdout_articles else set()
        # The throwaway index reuses the cached ONNX export, but its texts go to a
        # throwaway embedding cache: eval's articles must not fill the real one.
        settings = settings.model_copy(update={
            "index_dir": Path(scratch) / "index", "embedding_cache": Path(scratch) / "embeddings.sqlite",
        })
        if eval_set.articles:
            corpus = Path(scratch) / "corpus"
            write_eval_corpus(corpus, eval_set, distractors, held_out)
            settings = settings.model_copy(update={"corpus_dir": corpus})
        build = build_index(settings, progress, force=True)
        answerer = Answerer(settings)
        answerer.answer("warm-up question")
        questions = list(eval_set.questions[:limit] if limit else eval_set.questions)
        progress.start("asking", len(questions))
        results = []
        for question in questions:
            results.append((question, answerer.answer(question.question)))
            progress.advance(1)
    return score(results, held_out, build.seconds)


def score(results: list[tuple[EvalQuestion, Answer]], held_out: set[str], build_seconds: float) -> Report:
    """The report's figures for answered questions."""
    answerable = [(q, a) for q, a in results if q.answers and q.article not in held_out]
    unanswerable = [a for q, a in results if not q.answers]
    out_of_corpus = [a for q, a in results if q.answers and q.article in held_out]
    shown = [a for _, a in answerable if a.answered]
    latencies = sorted(a.took_ms for _, a in results)
    return Report(
        questions=len(results),
        quote_hit_at_1=_mean(_hit(q, a, 1) for q, a in answerable),
        quote_hit_at_3=_mean(_hit(q, a, 3) for q, a in answerable),
        mean_first_quote_chars=_mean(len(a.quotes[0].text) for a in shown),
        mean_shown_chars=_mean(sum(len(quote.text) for quote in a.quotes) for a in shown),
        answered_rate=_mean(a.answered for _, a in answerable),
        refused_rate_unanswerable=_mean(not a.answered for a in unanswerable) if unanswerable else None,
        refused_rate_out_of_corpus=_mean(not a.answered for a in out_of_corpus) if out_of_corpus else None,
        latency_ms_p50=round(_percentile(latencies, 50), 2),
        latency_ms_p95=round(_percentile(latencies, 95), 2),
        build_seconds=round(build_seconds, 2),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )


def report_lines(report: Report) -> list[str]:
    """The report as aligned `name: value` lines."""
    return [f"{name:>27}: {value}" for name, value in asdict(report).items()]


def _hit(question: EvalQuestion, answer: Answer, depth: int) -> bool:
    return any(gold in quote.text for quote in answer.quotes[:depth] for gold in question.answers)


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return round(statistics.fmean(values), 4) if values else 0.0


def _percentile(sorted_values: list[float], percent: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(percent / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def _jsonl_questions(raw: str, path: Path) -> Iterable[EvalQuestion]:
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            yield EvalQuestion(record["question"], tuple(record.get("answers", [])))
        except (ValueError, KeyError, TypeError) as error:
            raise EvalDataError(f"{path}:{number}: expected {{\"question\": ..., \"answers\": [...]}}") from error


def write_eval_corpus(corpus: Path, eval_set: EvalSet, distractors: Iterable[EvalSet], held_out: set[str]) -> None:
    """One .txt per article (less `held_out`) and per distractor article, in a new directory."""
    corpus.mkdir(parents=True)
    for title, text in eval_set.articles.items():
        if title not in held_out:
            (corpus / f"{title}.txt").write_text(text, encoding="utf-8")
    for number, distractor in enumerate(distractors):
        # A folder per distractor set, so a distractor's file name is just its title.
        folder = corpus / f"distractors-{number}"
        folder.mkdir()
        for title, text in distractor.articles.items():
            (folder / f"{title}.txt").write_text(text, encoding="utf-8")


def article_file_name(title: str) -> str:
    """An article title as the file name (and slice key) the eval harness gives it."""
    return re.sub(r"[^\w.-]+", "_", title).strip("._") or "article"
