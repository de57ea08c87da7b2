"""Answers at every shelf size: `make bench-shelves` measures, `make calibrate-shelves` fits the refusal.

A shelf is a corpus of N indexed passages: one article alone, tens, hundreds, thousands. Each is built from
articles whose questions are asked (some articles left off the shelf, so their questions are out of corpus)
and distractor articles whose questions are ignored. Two sides never meet:
- fitting (`--fit`) asks TyDi QA's calib slice and the SQuAD 2.0 train articles the selector never saw (every
  third paragraph left out, so its questions are on-topic and unanswerable), with
  distractors from TyDi's train slice (even hash bucket) and the SQuAD train articles the selector trained on;
- measuring asks TyDi's test slice and SQuAD 2.0 dev, with distractors from TyDi's train slice (odd bucket),
  SQuAD's distractor paragraphs and SQuAD dev; the "large" shelf adds every other paragraph the data holds
  (TyDi train and calib, SQuAD train), as the issue defines it, so it shares distractors with the fit (noted).
The fit refits the selector's stacked refusal over its evidence and the shelf's size (bot/answering/selector.py
SIZE_FEATURES) so that ANSWERED of each fit shelf's in-corpus questions are answered, and sets the "not sure"
band below it. Writes bench/results/shelves-fit.json, or bench/results/shelves[-NAME].json when measuring.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from common import DATA, ROOT, bucket, held_out_index, require_data, set_defaults, write_json_results  # (also puts the project on sys.path)

sys.path.insert(0, str(Path(__file__).resolve().parent / "training"))  # the training scripts whose pieces it reuses
from fit_ranker import fit_refusal_on  # noqa: E402
from train_selector import SQUAD_ARTICLES  # noqa: E402

from bot.answering.answer import Answerer  # noqa: E402
from bot.answering.selector import ALL_FEATURES, MODEL_DIR, SIZE_FEATURES, STACK_FEATURES, write_checksum  # noqa: E402
from bot.cli.evaluation import EvalQuestion, EvalSet, article_file_name, load_eval_set, select_slice  # noqa: E402
from config import load_settings  # noqa: E402

ANSWERED = 0.95
# At most this share of a fit shelf's out-of-corpus questions may land in "not sure" (the target: a quarter
# of those not answered), so a doubtful wrong passage is shown seldom.
NOT_SURE_OUT_OF_CORPUS = 0.15
ONE_DOCUMENT_SHELVES = 48
TENS_ARTICLES = 30
PER_SHELF = 400  # questions asked of one shelf at most, in and out of corpus each
SQUAD_PER_ARTICLE = 40


@dataclass(frozen=True)
class Shelf:
    """Articles on the shelf (title -> text), the questions asked of it, and which articles are off it."""

    name: str
    size: str
    articles: dict[str, str]
    questions: tuple[EvalQuestion, ...]
    off_shelf: frozenset[str]


def articles_of(eval_set: EvalSet, keep=lambda title: True) -> dict[str, str]:
    return {title: text for title, text in eval_set.articles.items() if keep(title)}


def questions_of(eval_set: EvalSet, titles, limit: int = PER_SHELF, answerable_only: bool = True) -> tuple[EvalQuestion, ...]:
    wanted = set(titles)
    chosen = [q for q in eval_set.questions if q.article in wanted and (q.answers or not answerable_only)]
    return tuple(chosen[:limit])


def one_document_shelves(eval_set: EvalSet, count: int, per_article: int | None = None,
                         unanswerable: bool = False) -> Iterator[Shelf]:
    """Each article alone, asked its own questions and the next article's (out of corpus)."""
    titles = [t for t in eval_set.articles if any(q.article == t and q.answers for q in eval_set.questions)][:count]
    for number, title in enumerate(titles):
        other = titles[(number + 1) % len(titles)]
        own = questions_of(eval_set, [title], per_article or PER_SHELF)
        if unanswerable:  # then half as many of its own unanswerable ones
            own += tuple(q for q in eval_set.questions if q.article == title and not q.answers)[:(per_article or PER_SHELF) // 2]
        yield Shelf(f"one-{number}", "one document", {title: eval_set.articles[title]},
                    own + questions_of(eval_set, [other], per_article or PER_SHELF), frozenset({other}))


def with_paragraphs_left_out(path: Path, titles: set[str], every: int = 3) -> EvalSet:
    """SQuAD articles (of `titles`) with every `every`th paragraph left out: the questions of a paragraph left
    out are on-topic but unanswerable on the article's shelf (as SQuAD 2.0's are), the others answerable."""
    articles, questions = {}, []
    for number, article in enumerate(json.loads(path.read_text(encoding="utf-8"))["data"]):
        title = article_file_name(article.get("title") or f"article-{number}")
        if title not in titles:
            continue
        kept = []
        for place, paragraph in enumerate(article["paragraphs"]):
            left_out = place % every == every - 1
            if not left_out:
                kept.append(paragraph["context"].strip())
            for qa in paragraph.get("qas", []):
                if not qa.get("is_impossible"):
                    answers = () if left_out else tuple(dict.fromkeys(a["text"] for a in qa["answers"]))
                    questions.append(EvalQuestion(qa["question"], answers, title))
        articles[title] = "\n\n".join(kept) + "\n"
    return EvalSet(articles, tuple(questions))


def shelves(side: str) -> Iterator[Shelf]:
    """The shelves of one side ("fit" or "measure"), smallest first."""
    tydi = load_eval_set(DATA / "tydiqa-en-train.json")
    train = select_slice(tydi, "train")
    if side == "fit":
        asked = select_slice(tydi, "calib")
        squad_train = load_eval_set(DATA / "squad2-train-10.json")
        squad_titles = list(squad_train.articles)
        # Its unanswerable questions are all in articles the selector trained on: make the unseen ones' instead.
        squad = with_paragraphs_left_out(DATA / "squad2-train-10.json", set(squad_titles[SQUAD_ARTICLES:]))
        distractors = {**articles_of(train, lambda t: bucket(t) == 0),
                       **articles_of(squad_train, lambda t: t in squad_titles[:SQUAD_ARTICLES])}
        large = {"thousands": distractors}
    else:
        asked = select_slice(tydi, "test")
        squad = load_eval_set(DATA / "squad2-dev-a.json")
        extra = load_eval_set(DATA / "squad2-distractors.json").articles
        distractors = {**articles_of(train, lambda t: bucket(t) == 1), **extra, **squad.articles}
        everything = {**train.articles, **select_slice(tydi, "calib").articles, **extra, **squad.articles,
                      **load_eval_set(DATA / "squad2-train-10.json").articles}
        large = {"thousands": distractors, "large (shares the fit's distractors)": everything}
    yield from one_document_shelves(asked, ONE_DOCUMENT_SHELVES)
    # SQuAD's on-topic unanswerable questions, asked of their own article, are out of corpus on both sides.
    yield from one_document_shelves(squad, len(squad.articles), SQUAD_PER_ARTICLE, unanswerable=True)
    titles = list(asked.articles)
    # A third of the articles stay off every multi-article shelf: their questions are out of corpus.
    off = titles[len(titles) * 2 // 3:]
    on = titles[: len(titles) * 2 // 3]
    questions = questions_of(asked, on) + questions_of(asked, off)
    yield Shelf("tens", "tens", articles_of(asked, lambda t: t in on[:TENS_ARTICLES]),
                questions_of(asked, on[:TENS_ARTICLES]) + questions_of(asked, off), frozenset(off))
    yield Shelf("hundreds", "hundreds", articles_of(asked, lambda t: t in on), questions, frozenset(off))
    for size, pool in large.items():
        yield Shelf(size.split()[0], size, {**articles_of(asked, lambda t: t in on),
                                            **{t: x for t, x in pool.items() if t not in asked.articles}},
                    questions, frozenset(off))


def ask_shelf(shelf: Shelf, fit: bool) -> list[dict]:
    """Build the shelf's index and ask its questions: one record each."""
    eval_set = EvalSet(shelf.articles, shelf.questions)
    with held_out_index(eval_set, set(), "verbatim-shelf-") as settings:
        answerer = Answerer(settings)
        if fit:
            record_every_feature(answerer)
        passages = answerer.searcher.manifest.passages
        records = []
        for question in shelf.questions:
            answer = answerer.answer(question.question)
            shown = answer.quotes or ((answer.closest,) if answer.closest else ())
            records.append({
                "shelf": shelf.name, "size": shelf.size, "passages": passages,
                "in_corpus": question.article not in shelf.off_shelf and bool(question.answers),
                "unanswerable": not question.answers,
                "outcome": answer.outcome, "evidence": list(answer.evidence),
                "first_holds": bool(shown) and any(gold in shown[0].text for gold in question.answers),
                "first_chars": len(shown[0].text) if shown else 0, "took_ms": answer.took_ms,
                "question": question.question, "quote": shown[0].text if shown else None,
                "quote_source": shown[0].source if shown else None,
            })
        return records


def record_every_feature(answerer: Answerer) -> None:
    """Make `answerer`'s refusal read every feature a fit may choose (ALL_FEATURES), at weight 0: its answers
    then carry that evidence, and the decision itself is not used."""
    selector = answerer.selector
    selector.calibration = replace(selector.calibration, features=ALL_FEATURES, refusal_weights=(0.0,) * len(ALL_FEATURES))


def summary(records: list[dict]) -> list[dict]:
    """Per shelf size: passages, answered, out-of-corpus not answered and shown as not sure, first-quote hit."""
    rows = []
    for size in dict.fromkeys(r["size"] for r in records):
        group = [r for r in records if r["size"] == size]
        inside = [r for r in group if r["in_corpus"]]
        outside = [r for r in group if not r["in_corpus"] and not r["unanswerable"]]
        unanswerable = [r for r in group if r["unanswerable"]]
        missed = [r for r in inside if r["outcome"] != "answered"]
        rows.append({
            "size": size, "shelves": len({r["shelf"] for r in group}),
            "passages": int(np.median([r["passages"] for r in group])),
            "passages_max": max(r["passages"] for r in group),
            "answerable": len(inside), "out_of_corpus": len(outside),
            "answered": mean(r["outcome"] == "answered" for r in inside),
            "first_quote_hit": mean(r["outcome"] == "answered" and r["first_holds"] for r in inside),
            "out_of_corpus_not_answered": mean(r["outcome"] != "answered" for r in outside),
            "out_of_corpus_not_sure": mean(r["outcome"] == "not_sure" for r in outside),
            "unanswerable_not_answered": mean(r["outcome"] != "answered" for r in unanswerable) if unanswerable else None,
            "answerable_not_sure": mean(r["outcome"] == "not_sure" for r in inside),
            "missed_shown_right_passage": sum(r["outcome"] == "not_sure" and r["first_holds"] for r in missed),
            "missed": len(missed),
            "latency_ms_p50": round(float(np.median([r["took_ms"] for r in group])), 2),
        })
    return rows


ANSWERED_OUT_OF_CORPUS = "shelves-answered-out-of-corpus.json"


def answered_out_of_corpus(records: list[dict]) -> dict:
    """The largest shelf's out-of-corpus questions that got an answer, with the quote shown: a distractor may
    truly answer one, so a sample is checked by hand (shelves-answered-out-of-corpus-checked.json)."""
    largest = max(records, key=lambda r: r["passages"])["size"]
    outside = [r for r in records if r["size"] == largest and not r["in_corpus"] and not r["unanswerable"]]
    answered = [{"question": r["question"], "quote": r["quote"], "source": r["quote_source"]} for r in outside
                if r["outcome"] == "answered"]
    return {"size": largest, "out_of_corpus": len(outside), "answered_count": len(answered),
            "answered": sorted(answered, key=lambda r: r["question"])}


def mean(values) -> float:
    values = list(values)
    return round(float(np.mean(values)), 4) if values else 0.0


# The evidence each fit reads (columns of ALL_FEATURES); the one that refuses most out-of-corpus questions on
# its worst fit shelf (every one answering ANSWERED of its own) is shipped.
VARIANTS = {
    "without size": STACK_FEATURES,
    "with size": (*STACK_FEATURES, *SIZE_FEATURES),
    "with size and the sentence's traits": ALL_FEATURES,
}
RECORDS = ROOT / "var" / "shelves" / "fit-records.json"


def fit(records: list[dict]) -> dict:
    """The stacked refusal over each of VARIANTS, fitted so that every size answers ANSWERED of its in-corpus
    questions, and the not-sure band below it."""
    named = ALL_FEATURES
    sets = {}
    for size in dict.fromkeys(r["size"] for r in records):
        group = [r for r in records if r["size"] == size]
        sets[size] = (np.array([r["evidence"] for r in group]), np.array([float(r["in_corpus"]) for r in group]))
    fits = {}
    for name, columns in VARIANTS.items():
        keep = [named.index(f) for f in columns]
        refusal = fit_refusal_on({size: (x[:, keep], y) for size, (x, y) in sets.items()})
        refusal["features"] = list(columns)
        refusal["not_sure_probability"] = not_sure_below(refusal, {size: (x[:, keep], y) for size, (x, y) in sets.items()})
        refusal["worst_out_of_corpus_refused"] = min(c["out_of_corpus_refused"] for c in refusal["calibration"].values())
        fits[name] = refusal
    return fits


def probabilities(refusal: dict, x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(x @ np.asarray(refusal["refusal_weights"]) + refusal["refusal_bias"])))


def not_sure_below(refusal: dict, sets: dict) -> float:
    """The lowest probability at which no fit shelf shows more than NOT_SURE_OUT_OF_CORPUS of its
    out-of-corpus questions as not sure."""
    threshold = refusal["min_probability"]
    floors = []
    for x, y in sets.values():
        p = probabilities(refusal, x)
        outside = np.sort(p[(y == 0) & (p < threshold)])[::-1]
        allowed = int(NOT_SURE_OUT_OF_CORPUS * int((y == 0).sum()))
        floors.append(outside[allowed] + 1e-6 if allowed < len(outside) else 0.0)
    return round(float(max(floors)), 4)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="fit the refusal on the fit side's shelves")
    parser.add_argument("--name", default="", help="measure into bench/results/shelves-NAME.json")
    parser.add_argument("--only", default="", help="measure only shelves of these sizes (comma-separated)")
    parser.add_argument("--refit", action="store_true", help=f"fit again on the records of the last --fit ({RECORDS})")
    args = parser.parse_args()
    require_data("tydiqa-en-train.json", "squad2-train-10.json", "squad2-dev-a.json", "squad2-distractors.json")
    started = time.perf_counter()
    records = json.loads(RECORDS.read_text(encoding="utf-8")) if args.refit else []
    for shelf in () if args.refit else shelves("fit" if args.fit else "measure"):
        if args.only and shelf.size.split()[0] not in args.only.split(","):
            continue
        records.extend(ask_shelf(shelf, args.fit))
        print(f"{shelf.name}: {len(records)} questions so far, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if not (args.fit or args.refit):
        name = f"shelves-{args.name}.json" if args.name else "shelves.json"
        write_json_results(name, {"data": __doc__.split("\n\n")[1], "settings": settings_note(),
                                  "seconds": round(time.perf_counter() - started), "sizes": summary(records)})
        if not args.name and not args.only:
            write_json_results(ANSWERED_OUT_OF_CORPUS, answered_out_of_corpus(records))
        return 0
    if args.fit:
        RECORDS.parent.mkdir(parents=True, exist_ok=True)
        RECORDS.write_text(json.dumps(records), encoding="utf-8")
    fits = fit(records)
    choice = max(fits, key=lambda name: fits[name]["worst_out_of_corpus_refused"])
    chosen = fits[choice]
    write_calibration(chosen)
    set_defaults(selector_min_probability=chosen["min_probability"],
                 selector_not_sure_probability=chosen["not_sure_probability"])
    write_json_results("shelves-fit.json", {"data": __doc__.split("\n\n")[1], "chosen": choice, "fits": fits,
                                            "seconds": round(time.perf_counter() - started)})
    return 0


def write_calibration(refusal: dict) -> None:
    path = MODEL_DIR / "calibration.json"
    stored = json.loads(path.read_text(encoding="utf-8"))
    stored.update(refusal_features=refusal["features"], refusal_weights=[round(w, 6) for w in refusal["refusal_weights"]],
                  refusal_bias=round(refusal["refusal_bias"], 6))
    path.write_text(json.dumps(stored, indent=1) + "\n", encoding="utf-8")
    write_checksum(MODEL_DIR)


def settings_note() -> dict:
    settings = load_settings()
    return {name: getattr(settings, name) for name in
            ("selector_min_probability", "selector_not_sure_probability", "selector_candidates")}


if __name__ == "__main__":
    sys.exit(main())
