# Two commands on a fresh machine: `make run` (the app) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
PORT ?= 8501

.PHONY: install run test lint models bench

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) \
		--browser.gatherUsageStats false

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Retrain every shipped model in models/ from its recipe and rewrite the cards (hours on a CPU; overwrites models/).
models: $(STAMP)
	$(PY) scripts/shipped_models.py

# The benchmarks that need no external data (no PTB copy, no browser), each printing JSON.
# benchmarks/ptb_quality.py and train_speed.py on PTB, and browser_latency.py, are run by hand (see their docstrings).
BENCH_SIZES ?= 10000,100000
bench: $(STAMP)
	$(PY) benchmarks/latency.py
	$(PY) benchmarks/map_latency.py
	$(PY) benchmarks/train_speed.py --data synthetic
	$(PY) benchmarks/corpus_scale.py --sizes $(BENCH_SIZES)
