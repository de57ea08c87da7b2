"""Collect per-question candidate signals once, then sweep scoring weights offline.

Not part of the product: a lab bench for choosing the defaults in index/search/hybrid.py
and config/defaults.toml. Usage: python bench/training/tune.py
"""
import json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bot.answering.answer import Answerer
from bot.cli.evaluation import load_eval_set, write_eval_corpus
from config import load_settings
from index.build import build_index

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
squad = load_eval_set(DATA / "squad2-dev-a.json")
distractors = load_eval_set(DATA / "squad2-distractors.json")
import os
held_out = {os.environ.get("HOLDOUT") or list(squad.articles)[-1]}
work = Path(os.environ.get("TUNE_DIR", "var/tune"))
corpus = work / "corpus"
if not corpus.exists():
    write_eval_corpus(corpus, squad, [distractors], held_out)
# Its own cache, as before: tuning texts stay out of the project cache.
settings = load_settings(corpus_dir=corpus, index_dir=work / "index", cache_dir=work / "cache", candidate_passages=int(sys.argv[1]) if len(sys.argv) > 1 else 20)
print(build_index(settings, force=True))
answerer = Answerer(settings)
rows = []
for q in squad.questions:
    hits = answerer.searcher.search(q.question)
    rows.append({
        "q": q.question, "answers": q.answers, "kind": "ooc" if q.article in held_out and q.answers else ("ans" if q.answers else "imp"),
        "hits": [[h.dense, h.lexical, h.passage, h.text, h.sentence_id, h.passage_id, h.passage_dense, h.passage_lexical, h.coverage, h.score] for h in hits],
    })
(work / "signals.json").write_text(json.dumps(rows))
print("wrote", len(rows))
