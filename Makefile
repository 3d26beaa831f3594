# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Each creates .venv itself. torch: an existing torch in .venv is kept (e.g. your
# CUDA build: `make setup VENV_FLAGS=--system-site-packages` reuses a system one);
# with an NVIDIA GPU, pip's default (CUDA) torch; otherwise the 2.13.0 CPU build.
# Override with TORCH_SPEC, e.g. `make setup TORCH_SPEC="torch==2.5.1"`.

PYTHON ?= python3
VENV ?= .venv
VENV_FLAGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.jenga-installed
DEMO := build/demo

.PHONY: setup demo test data clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	@if [ -n "$(TORCH_SPEC)" ]; then $(BIN)/pip install "$(TORCH_SPEC)"; \
	elif $(BIN)/python -c "import torch" 2>/dev/null; then \
	  echo "keeping installed torch $$($(BIN)/python -c 'import torch; print(torch.__version__)')"; \
	elif nvidia-smi -L >/dev/null 2>&1; then echo "GPU found: installing a CUDA torch"; $(BIN)/pip install torch; \
	else echo "no GPU: installing the CPU build torch==2.13.0"; $(BIN)/pip install "torch==2.13.0"; fi
	$(BIN)/pip install -e ".[train,dev]"
	touch $@

data: setup
	mkdir -p examples/data
	$(BIN)/jenga-train generate --use-case network --rows 6000 --seed 1 -o examples/data/network.jsonl
	$(BIN)/jenga-train generate --use-case fraud --rows 8000 --seed 2 -o examples/data/fraud.jsonl
	$(BIN)/jenga-train generate --use-case aiops --rows 6000 --seed 3 -o examples/data/aiops.jsonl

demo: data
	mkdir -p $(DEMO)
	$(BIN)/jenga-train --config examples/configs/network_multitask.yaml --output-dir $(DEMO)/network
	$(BIN)/jenga-train evaluate --model $(DEMO)/network/best_model --data examples/network_traffic.json
	$(BIN)/jenga-export $(DEMO)/network/best_model -o $(DEMO)/bundle --force
	$(BIN)/jenga-edge inspect $(DEMO)/bundle
	$(BIN)/jenga-train predict --model $(DEMO)/network/best_model --data examples/network_traffic.json \
	  --threshold 0.9 --alerts $(DEMO)/alerts.jsonl -o $(DEMO)/scores.jsonl
	@echo "--- sentinel alerts (first 5 of $$(wc -l < $(DEMO)/alerts.jsonl)) ---"
	@head -n 5 $(DEMO)/alerts.jsonl

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build runs examples/data
