# mlmprimer: every target creates what it needs (.venv with pinned versions) by itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
BUILD  := _build
NOTEBOOKS := $(wildcard book/*.ipynb) $(wildcard solutions/*.ipynb)
# The execution cache looks only at code cells: key it on the library and the pinned versions too.
LIBHASH = $(shell cat constraints.txt pyproject.toml $(sort $(wildcard mlmprimer/*.py mlmprimer/*/*.py mlmprimer/data/*)) | sha256sum | cut -c1-16)
BOOKFLAGS := -W -n --keep-going
TOC ?= _toc.yml

.PHONY: help venv book book-nosolutions test test-unit test-notebooks test-browser lab execute \
        exercises toc lint benchmark clean sysdeps

help:
	@echo "make book    build the HTML book into $(BUILD)/html"
	@echo "make test    run every test (unit, doctests, lme4 comparison, notebooks, browser)"
	@echo "make lab     open the exercises in JupyterLab"
	@echo "make execute re-execute every notebook in place (after a library change)"

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test,book,lab]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# Our static files (MathJax, CSS, JS) are copied into the build by Sphinx from book/_static, but not
# over older copies: the HTML is written afresh each time (executed notebooks stay cached).
book: $(STAMP)
	@mkdir -p $(BUILD)
	@rm -rf $(BUILD)/html
	@if [ "$$(cat $(BUILD)/.libhash 2>/dev/null)" != "$(LIBHASH)" ]; then \
	  echo "library or pinned versions changed: clearing the execution cache"; \
	  rm -rf $(BUILD)/.jupyter_cache $(BUILD)/jupyter_execute; fi
	$(BIN)/jupyter-book build . --toc $(TOC) $(BOOKFLAGS)
	@echo "$(LIBHASH)" > $(BUILD)/.libhash
	@echo "The book is at $(CURDIR)/$(BUILD)/html/index.html"

# An instructor's build with every solution left out.
book-nosolutions:
	$(MAKE) book TOC=_toc_nosolutions.yml BUILD=_build

test: $(STAMP)
	$(MAKE) test-unit
	$(MAKE) test-notebooks
	$(MAKE) book
	$(MAKE) test-browser

test-unit: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -m "not browser"

# The notebooks run once as the machine is and once under another OpenBLAS kernel (see
# scripts/blas_kernels.py), so that stored outputs are shown to hold on other machines too.
# BLAS_KERNELS="default" runs them once.
BLAS_KERNELS ?=
test-notebooks: $(STAMP)
	@kernels="$(BLAS_KERNELS)"; [ -n "$$kernels" ] || kernels="$$($(PY) scripts/blas_kernels.py)"; \
	for k in $$kernels; do \
	  echo "== notebook tests, OpenBLAS kernel: $$k"; \
	  if [ "$$k" = default ]; then set --; else set -- env OPENBLAS_CORETYPE=$$k; fi; \
	  "$$@" $(BIN)/pytest --nbval --nbval-current-env --nbval-sanitize-with nbval_sanitize.cfg \
	    -p no:cacheprovider -o addopts="" book solutions || exit 1; \
	done

test-browser: $(STAMP)
	$(BIN)/pytest -m browser -o addopts="" tests/browser

execute: $(STAMP)
	$(PY) -m mlmprimer.notebooks execute $(NOTEBOOKS)

exercises: $(STAMP)
	$(PY) -m mlmprimer.notebooks exercises

# Both tables of contents, from the one chapter list in scripts/toc.py.
toc:
	$(PYTHON) scripts/toc.py

lab: $(STAMP)
	$(BIN)/jupyter lab exercises

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check mlmprimer tests

benchmark: $(STAMP)
	$(PY) benchmarks/run.py

# System packages for the lme4 comparison and the browser tests (Debian; needs root).
sysdeps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  r-base-core r-cran-lme4 r-cran-nlme r-cran-mlmrev r-cran-mass r-cran-lmertest r-cran-pbkrtest \
	  chromium chromium-driver nodejs

clean:
	rm -rf $(BUILD)
