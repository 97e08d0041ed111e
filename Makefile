# Two commands on a fresh machine with Python 3.11 and pip:
#   make demo   set up .venv, install embvar, run the MovieLens study
#   make test   set up .venv, install embvar with its test tools, run the tests
PY ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test quick article-quick lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[cpu,dev,ray]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/embvar study movielens

quick: $(BIN)/.installed
	$(BIN)/embvar study movielens --quick

# The article's claims C1-C7 on the quick plan (the CI check of that path).
article-quick: $(BIN)/.installed
	$(BIN)/embvar study article --quick --no-progress

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

# Lint and format check of the code and the README's Python blocks (CI runs
# it before the tests).
lint: $(BIN)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf runs .pytest_cache
