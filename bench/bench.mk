# Benchmarks, included by the root Makefile: every target runs from the repository root.

.PHONY: bench bench-late-chunking bench-embedder-quantization bench-embedder-speed bench-peers bench-speed bench-incremental bench-crash bench-scale bench-cluster bench-discord bench-scoped bench-web eval-ann eval-reader eval-no-reader-doubt eval-no-selector eval-no-ranker bench-shelves bench-fresh-clone bench-hostile

# Benchmarks (long; results in bench/results/). Peers are installed only here.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: bench-peers bench-speed bench-incremental bench-crash bench-scale bench-cluster bench-discord bench-web bench-scoped

# Whether sentence vectors pooled from their passage's tokens (late chunking) would help the ranker.
bench-late-chunking: $(STAMP)
	cd bench && ../$(PY) late_chunking.py

# What int8 costs the embedder: fp32 against int8 with one scale per weight matrix or per channel.
# (bench/results/*-embedder-per-channel*.json: fit-ranker, calibrate-selector and calibrate-reader run with
# index/embedding/onnx_export.py's PER_CHANNEL set, then train-selector, calibrate-selector and calibrate-reader too
# (the -retrained files), their results files copied; not shipped.)
bench-embedder-quantization: $(STAMP)
	cd bench && ../$(PY) embedder_quantization.py

# The distilled embedder against the bundled MiniLM: answer() p50, build throughput, cold ask (embedder-speed.json).
bench-embedder-speed: $(BENCH_STAMP)
	cd bench && ../$(PY) embedder_speed.py

bench-peers: $(BENCH_STAMP)
	cd bench && ../$(PY) peers.py

bench-speed: $(BENCH_STAMP)
	cd bench && ../$(PY) speed.py

bench-incremental: $(BENCH_STAMP)
	cd bench && ../$(PY) incremental.py

bench-crash: $(BENCH_STAMP)
	cd bench && ../$(PY) crash.py

# Passage search at N passages (IVF-PQ from 1M on): bench/results/scale-N.json. Needs ~N/1M x 0.9 GB of disk under var/.
bench-scale: $(BENCH_STAMP)
	@mkdir -p var
	cd bench && ../$(PY) scale.py $(or $(N),1000000) real-mix

# Build throughput on Ray (1 and 2 local workers) and the scaling model: bench/results/cluster.json.
bench-cluster: $(BENCH_STAMP)
	cd bench && ../$(PY) cluster.py

bench-discord: $(BENCH_STAMP)
	cd bench && ../$(PY) discord_load.py

# Scoped questions (`ask --source`) about one small document among ~900: bench/results/scoped.md.
bench-scoped: $(STAMP)
	cd bench && ../$(PY) scoped.py

bench-web: $(BENCH_STAMP)
	cd bench && ../$(PY) web.py

# Answer quality of an IVF-PQ index against the exact one (SQuAD, first 800 questions): flat, and IVF-PQ
# with sentence vectors as PQ codes of 48, 96 and 192 bytes -> bench/results/eval-ann-*.json.
eval-ann: $(STAMP)
	@mkdir -p bench/results
	@for config in flat: ivfpq:48 ivfpq:96 ivfpq:192; do type=$${config%%:*}; m=$${config##*:}; \
	  VERBATIM_INDEX_TYPE=$$type VERBATIM_ANN_SENTENCE_PQ_M=$${m:-192} $(VENV)/bin/verbatim eval ../shared/data/squad2-dev-a.json \
	    --distractors ../shared/data/squad2-distractors.json --holdout-articles 1 --limit 800 --json \
	    > bench/results/eval-ann-$$type$${m:+-$$m}.json && cat bench/results/eval-ann-$$type$${m:+-$$m}.json; done

# The same two reports with the passage reader on after the selector (bench/results/eval-*-reader.json).
eval-reader: $(STAMP)
	@mkdir -p bench/results
	VERBATIM_READER=true $(VENV)/bin/verbatim eval ../shared/data/tydiqa-en-train.json --slice test --holdout-articles 80 --json > bench/results/eval-tydi-reader.json
	VERBATIM_READER=true $(VENV)/bin/verbatim eval ../shared/data/squad2-dev-a.json --distractors ../shared/data/squad2-distractors.json --holdout-articles 1 --json > bench/results/eval-squad-reader.json

# The defaults, but the passage reader never reads (not even where the selector is torn): what reader_doubt_margin buys.
eval-no-reader-doubt: $(STAMP)
	@mkdir -p bench/results
	VERBATIM_READER_DOUBT_MARGIN=0 $(VENV)/bin/verbatim eval ../shared/data/tydiqa-en-train.json --slice test --holdout-articles 80 --json > bench/results/eval-tydi-no-reader-doubt.json
	VERBATIM_READER_DOUBT_MARGIN=0 $(VENV)/bin/verbatim eval ../shared/data/squad2-dev-a.json --distractors ../shared/data/squad2-distractors.json --holdout-articles 1 --json > bench/results/eval-squad-no-reader-doubt.json

# The same two reports with the answer selector off: the ranker alone (bench/results/eval-*-no-selector.json).
eval-no-selector: $(STAMP)
	@mkdir -p bench/results
	VERBATIM_SELECTOR=false $(VENV)/bin/verbatim eval ../shared/data/tydiqa-en-train.json --slice test --holdout-articles 80 --json > bench/results/eval-tydi-no-selector.json
	VERBATIM_SELECTOR=false $(VENV)/bin/verbatim eval ../shared/data/squad2-dev-a.json --distractors ../shared/data/squad2-distractors.json --holdout-articles 1 --json > bench/results/eval-squad-no-selector.json

# The same with the sentence ranker off: retrieval's own order and refusal (the previous default).
eval-no-ranker: $(STAMP)
	@mkdir -p bench/results
	VERBATIM_RANKER=false $(VENV)/bin/verbatim eval ../shared/data/tydiqa-en-train.json --slice test --holdout-articles 80 --json > bench/results/eval-tydi-no-ranker.json
	VERBATIM_RANKER=false $(VENV)/bin/verbatim eval ../shared/data/squad2-dev-a.json --distractors ../shared/data/squad2-distractors.json --holdout-articles 1 --json > bench/results/eval-squad-no-ranker.json

# Answers at every shelf size (one document, tens, hundreds, thousands of passages): bench/results/shelves.json.
bench-shelves: $(STAMP)
	cd bench && ../$(PY) shelves.py

# The README's set-up and test times: clone HEAD into a temp dir and time `make ask` and `make test` there
# (bench/results/fresh-clone.json; run on an idle machine, then `make docs`). Needs only python3, git and make.
bench-fresh-clone:
	python3 bench/fresh_clone.py

# A build over one of each hostile file (tests/hostile.py) and 20 good files: each hostile file skipped with its
# reason, peak memory of the process tree and time against the good files alone -> bench/results/hostile.json.
bench-hostile: $(BENCH_STAMP)
	cd bench && ../$(PY) hostile.py
