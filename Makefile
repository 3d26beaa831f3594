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

.PHONY: setup demo test lint docs data clean soc-bundle soc-demo lab-corpus

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py jenga_edge/native/_fastjson.c jenga_edge/native/_syncer.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	@if [ -n "$(TORCH_SPEC)" ]; then $(BIN)/pip install "$(TORCH_SPEC)"; \
	elif $(BIN)/python -c "import torch" 2>/dev/null; then \
	  echo "keeping installed torch $$($(BIN)/python -c 'import torch; print(torch.__version__)')"; \
	elif nvidia-smi -L >/dev/null 2>&1; then echo "GPU found: installing a CUDA torch"; $(BIN)/pip install torch; \
	else echo "no GPU: installing the CPU build torch==2.13.0"; $(BIN)/pip install "torch==2.13.0"; fi
	$(BIN)/pip install -e ".[train,dev,trees]"
	touch $@

data: setup
	mkdir -p examples/data
	$(BIN)/jenga-train generate --use-case network --rows 6000 --seed 1 -o examples/data/network.jsonl
	$(BIN)/jenga-train generate --use-case fraud --rows 8000 --seed 2 -o examples/data/fraud.jsonl
	$(BIN)/jenga-train generate --use-case aiops --rows 6000 --seed 3 -o examples/data/aiops.jsonl

demo: data
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	@echo "=== 1. train (workstation) ==="
	$(BIN)/jenga-train --config examples/configs/network_multitask.yaml --output-dir $(DEMO)/network
	$(BIN)/jenga-train evaluate --model $(DEMO)/network/best_model --data examples/network_traffic.json
	@echo "=== 2. export: per-task ONNX graphs in a verified bundle ==="
	$(BIN)/jenga-export --model $(DEMO)/network/best_model -o $(DEMO)/bundle
	$(BIN)/jenga-edge inspect --bundle $(DEMO)/bundle
	@echo "=== 3. edge agent (torch-free) scores 3,000 flows, applies sentinel rules ==="
	$(BIN)/jenga-train generate --use-case network --rows 3000 --seed 9 -o $(DEMO)/events.jsonl
	$(BIN)/jenga-edge run --config examples/agent_demo.yaml < $(DEMO)/events.jsonl
	@echo "=== 4. alerts (newest first) ==="
	$(BIN)/jenga-edge alerts --db $(DEMO)/alerts.db --since 1h --limit 15
	@echo "=== 5. an analyst checks one suspicious flow (exit 1 = threat) ==="
	$(BIN)/jenga-edge check --bundle $(DEMO)/bundle '{"packet_size": 60, "port": 8081, "protocol": "tcp", "duration": 0.01, "request_count": 1, "bytes_sent": 40, "bytes_received": 0}'; \
	  echo "(jenga-edge check exit status $$?: 0 clean, 1 threat found, 2 bad input)"

# The SOC sensor's model, trained on the traffic lab's corpus (lab/corpus/), as a bundle.
SOC := build/soc
soc-bundle: setup
	$(BIN)/jenga-train --config examples/configs/suricata_flows.yaml --output-dir $(SOC)
	$(BIN)/jenga-export --model $(SOC)/best_model -o $(SOC)/bundle --force

# Suricata on a real capture (or its committed eve.json), then the agent: alerts name the attacker.
soc-demo: soc-bundle
	examples/soc_demo.sh $(BIN)

# The lab corpus again (root, the lab's tools; ~50 min): two runs at a time, then published.
# corpus.yaml seeds 7 (training) and 8 (evaluation); office.yaml (benign only) seeds 10, 11 (training).
lab-corpus: setup
	$(BIN)/python -m lab check lab/scenarios/corpus.yaml
	$(BIN)/python -m lab check lab/scenarios/office.yaml
	rm -rf build/lab/corpus-s7 build/lab/corpus-s8 build/lab/office-s10 build/lab/office-s11
	$(BIN)/python -m lab run lab/scenarios/corpus.yaml --seed 7 -o build/lab/corpus-s7 & first=$$!; \
	  sleep 3; $(BIN)/python -m lab run lab/scenarios/corpus.yaml --seed 8 -o build/lab/corpus-s8; rc=$$?; \
	  wait $$first && [ $$rc -eq 0 ]
	$(BIN)/python -m lab run lab/scenarios/office.yaml --seed 10 -o build/lab/office-s10 & first=$$!; \
	  sleep 3; $(BIN)/python -m lab run lab/scenarios/office.yaml --seed 11 -o build/lab/office-s11; rc=$$?; \
	  wait $$first && [ $$rc -eq 0 ]
	$(BIN)/python -m lab publish build/lab/corpus-s7 build/lab/corpus-s8 build/lab/office-s10 build/lab/office-s11

test: lint
	$(BIN)/python -m pytest -q
	@echo "=== the edge agent again on its pure-Python paths (as on a machine without a C compiler) ==="
	JENGA_EDGE_PURE=1 $(BIN)/python -m pytest -q tests/jenga_edge

# ruff (lint + format check) and mypy (strict on jenga_edge/), as `make test` runs them.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# docs/config-reference.md is generated from the typed configs (tests/test_docs.py checks it).
docs: setup
	$(BIN)/python docs/gen_reference.py > docs/config-reference.md

clean:
	rm -rf $(VENV) build runs examples/data
