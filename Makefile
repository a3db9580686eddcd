# Two commands do everything (see README.md):
#   make run    set up, execute every notebook top to bottom into build/, build the site,
#               then print each lesson's CPU and wall time
#   make test   set up, then lint and run all tests (helpers, R comparisons, notebooks)
# Both are idempotent: setup reinstalls only when pyproject.toml or constraints.txt change.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KERNEL := weights-vector

.PHONY: setup system-deps run docs test lint lab clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[keras,torch,sklearn,io,lessons,docs,test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) \
		--display-name "Python 3.11 (weights-as-a-vector)" >/dev/null
	touch $(STAMP)

# R and its nnet package are the reference for helpers.nnet (Debian packages).
system-deps:
	@bash scripts/install-r.sh
	@bash scripts/install-chromium.sh  # headless Chromium: tests/test_site.py reads the site in it

# Ends with a table of each lesson's CPU and wall seconds, and where to open the site.
run: setup
	$(BIN)/python scripts/run_notebooks.py --site

docs: setup
	$(BIN)/python scripts/build_docs.py

# nbval runs every lesson at its defaults against the committed outputs; tests/ runs each
# once more at cheap parameters. Ends with the 20 slowest tests and the CPU time (user + sys)
# of pytest and every process it started (tests/conftest.py).
test: setup system-deps lint
	$(BIN)/python -m pytest tests notebooks --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg \
		--nbval-current-env -p no:cacheprovider --durations=20

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lab: setup
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf build $(VENV)
