# Two entry points: `make verify` (main job) and `make test`. Both build .venv on first use.
# `make docs` builds the documentation site into docs/_build/html from saved results (see docs/README.md).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs
SCALE  ?= quick

.PHONY: verify test figures bench docs clean-venv

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
	$(VENV)/bin/sublab bench --resume   # continues a killed run; refuses results taken with other settings

$(DOCS_STAMP): $(STAMP) pyproject.toml constraints.txt
	$(PY) -m pip install --quiet -c constraints.txt -e ".[docs]"
	touch $(DOCS_STAMP)

# Offline, from results/quick and results/full as saved (no claim is re-run); warnings and broken links fail it.
docs: $(DOCS_STAMP)
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "docs: built docs/_build/html/index.html"

clean-venv:
	rm -rf $(VENV)
