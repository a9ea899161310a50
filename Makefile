# Two commands for a newcomer: `make demo` (Paved's main job on its embedded defaults) and `make test`.
# Both create the virtual environment in .venv on first use, saying what each step does while it runs
# (the first install downloads Paved's dependencies: a minute or two, with pip's own progress shown).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml setup.py
	@echo "==> Creating the virtual environment $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> Updating pip in $(VENV)"
	$(BIN)/python -m pip install --upgrade pip
	@echo "==> Installing Paved (editable) and its test tools into $(VENV)"
	$(BIN)/python -m pip install -e '.[dev]'
	@echo "==> $(VENV) is ready"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/paved demo

test: $(BIN)/.installed
	$(BIN)/python -m pytest -n auto --dist loadfile

lint: $(BIN)/.installed
	$(BIN)/ruff check bot tests bench
	$(BIN)/mypy bot

bench: $(BIN)/.installed
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
