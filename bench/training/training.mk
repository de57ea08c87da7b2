# Training and calibrating the trained models (bot/answering/models/), and the experiments that chose how:
# included by the root Makefile, run from the repository root. The scripts are in bench/training/ and run
# from bench/, as the benchmarks do; their results go to bench/results/.

.PHONY: fit-ranker train-selector export-selector calibrate-selector bench-selector-quantization try-selector-context try-selector-layers try-selector-epochs try-selector-shelf-negatives train-reader calibrate-reader export-reader tune-reader-doubt bench-reader-windows bench-reader-quantization tune-quotes calibrate-shelves try-shelf-evidence train-embedder try-embedder-objectives try-embedder-ceiling

# Fit the sentence ranker (bot/answering/models/ranker/) on TyDi train + SQuAD train, its refusal on TyDi calib.
fit-ranker: $(BENCH_STAMP)
	cd bench && ../$(PY) training/fit_ranker.py

# The answer selector (bot/answering/models/selector/): reproducible from the shared data with a fixed seed, on the
# ranker's candidates (searched again, or reused from `make fit-ranker`'s cache in var/ranker/).
train-selector: $(BENCH_STAMP)
	cd bench && ../$(PY) training/train_selector.py

# Export the last trained selector (var/selector/trained, from `make train-selector`) again, then calibrate it.
export-selector: $(BENCH_STAMP)
	cd bench && ../$(PY) training/train_selector.py --export ../var/selector/trained && ../$(PY) training/calibrate_selector.py

# How the selector's logit joins the ranker's score and refusal, fitted on questions it never saw.
calibrate-selector: $(BENCH_STAMP)
	cd bench && ../$(PY) training/calibrate_selector.py

# What int8 costs the selector: its fp32 export against int8 with one scale per weight matrix or per channel.
bench-selector-quantization: $(BENCH_STAMP)
	cd bench && ../$(PY) training/selector_quantization.py

# An experiment, not shipped: a 4-layer selector that also reads the 160 characters before each sentence,
# trained and calibrated as the shipped one (var/selector/context-160-layers-4/, bench/results/selector-*-context-160-layers-4.json).
try-selector-context: $(BENCH_STAMP)
	cd bench && ../$(PY) training/train_selector.py --context 160 --layers 4 && ../$(PY) training/calibrate_selector.py --context 160 --layers 4

# The shipped selector before 2026-12-03's third run, for comparison: MiniLM cut to its first 4
# layers, trained and calibrated as the shipped one (var/selector/layers-4/, bench/results/selector-*-layers-4.json).
try-selector-layers: $(BENCH_STAMP)
	cd bench && ../$(PY) training/train_selector.py --layers 4 && ../$(PY) training/calibrate_selector.py --layers 4

# An experiment: the shipped selector trained for 3 epochs instead of 2
# (var/selector/epochs-3/, bench/results/selector-*-epochs-3.json).
try-selector-epochs: $(BENCH_STAMP)
	cd bench && ../$(PY) training/train_selector.py --epochs 3 && ../$(PY) training/calibrate_selector.py --epochs 3

# The selector also trained on what big shelves offer questions they can't answer, and on on-topic unanswerables.
try-selector-shelf-negatives: $(BENCH_STAMP)
	cd bench && ../$(PY) training/train_selector.py --shelf-negatives && ../$(PY) training/calibrate_selector.py --shelf-negatives

# The passage reader (bot/answering/models/reader/, off by default): an extractive reader trained from the bundled MiniLM on
# the selector's training questions (seed 13, about an hour on 2 cores), then measured and calibrated after
# the selector on its calibration sets; needs the ranker's cached candidates (searched again if absent).
train-reader: $(BENCH_STAMP)
	cd bench && ../$(PY) training/train_reader.py

# Measure and calibrate the shipped reader (bot/answering/models/reader) again, e.g. after a change in how answering reads.
calibrate-reader: $(BENCH_STAMP)
	cd bench && ../$(PY) training/train_reader.py --calibrate-only

# When the reader reads with `reader = false`: the margin between the selector's two best sentences below which it
# reads them anyway (reader_doubt_margin, bench/results/reader-doubt.json; about 6 minutes).
tune-reader-doubt: $(BENCH_STAMP)
	cd bench && ../$(PY) training/reader_doubt.py

# Export the trained reader (var/reader/trained, from `make train-reader`) again, then measure and calibrate it.
export-reader: $(BENCH_STAMP)
	cd bench && ../$(PY) training/train_reader.py --export-only

# How much text around the ranker's best sentences the reader reads: alone, 1 or 2 either side, or the whole passage.
bench-reader-windows: $(BENCH_STAMP)
	cd bench && ../$(PY) training/reader_windows.py

# What int8 costs the reader: its fp32 export against int8 with one scale per weight matrix or per channel.
bench-reader-quantization: $(BENCH_STAMP)
	cd bench && ../$(PY) training/reader_quantization.py

# First-quote length against hits by quote_neighbour_margin, on TyDi's train slice.
tune-quotes: $(STAMP)
	cd bench && ../$(PY) training/quote_margin.py

# Refit the selector's stacked refusal and its "not sure" band across shelf sizes (fit-side data only).
calibrate-shelves: $(BENCH_STAMP)
	cd bench && ../$(PY) shelves.py --fit

# An experiment: would the refusal refuse more on big shelves with more evidence (the selector reading 8 sentences,
# the question's words in the chosen document)? Fit-side shelves only; bench/results/shelves-evidence.json.
try-shelf-evidence: $(BENCH_STAMP)
	cd bench && ../$(PY) shelves_evidence.py

# Distil all-mpnet-base-v2 (downloaded by this target only, checksum-checked, into var/embedder/teacher/) into a
# MiniLM-size student, measure teacher, MiniLM and student alone on TyDi's calib slice
# (bench/results/embedder-distillation.json), and install the student as index/embedding/models/minilm-l6-distilled-mpnet/
# (about 45 minutes on 2 cores). Its objective was chosen by `make try-embedder-objectives`.
train-embedder: $(BENCH_STAMP)
	cd bench && ../$(PY) training/train_embedder.py --objective ranking

# The ceiling: the teacher itself as int8 ONNX with its FFN outputs fp32 (var/embedder/mpnet-int8-ffn-fp32/, 195 MB, not
# shipped), measured alone; set `model` to that folder and refit (fit-ranker, calibrate-selector, calibrate-shelves) for the stack.
try-embedder-ceiling: $(BENCH_STAMP)
	cd bench && ../$(PY) training/train_embedder.py --ceiling

# Both objectives, each on 1,600 training questions, measured alone (embedder-distillation-limit-1600.json).
try-embedder-objectives: $(BENCH_STAMP)
	cd bench && ../$(PY) training/train_embedder.py --limit 1600
