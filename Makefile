# Two entry points: `make verify` (main job) and `make test`. Both build .venv on first use.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SCALE  ?= quick

.PHONY: verify test figures bench clean-venv

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test,probes]"
	touch $(STAMP)

verify: $(STAMP)
	$(VENV)/bin/sublab verify --scale $(SCALE) --json results/verify-$(SCALE).json

test: $(STAMP)
	$(PY) -m pytest -q

figures: $(STAMP)
	$(VENV)/bin/sublab figures

bench: $(STAMP)
	$(VENV)/bin/sublab bench

clean-venv:
	rm -rf $(VENV)
