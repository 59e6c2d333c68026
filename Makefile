# Two entry points for a fresh machine (see README.md):
#   make demo   set up .venv and run the built-in demo model end to end
#   make test   set up .venv and run lint, type checks and the full test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_OUT ?= build/demo

.PHONY: setup demo test lint pytest bench clean

$(STAMP): pyproject.toml
	@# Icarus Verilog, the second simulator, and the Fashion-MNIST data set have no PyPI package:
	@# Debian's are installed outside pip (needs root, as on CI and the developer machines).
	command -v iverilog >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog; }
	@# Fashion-MNIST (compress --data fashion-mnist) from Debian's dataset-fashion-mnist package.
	test -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py --out $(DEMO_OUT)

lint: $(STAMP)
	$(BIN)/ruff check autochip tests rtl_tests models benchmarks scripts
	$(BIN)/ruff format --check autochip tests rtl_tests models benchmarks scripts
	$(BIN)/mypy autochip

pytest: $(STAMP)
	$(BIN)/python -m pytest

test: lint pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/predictor_speed.py
	$(BIN)/python benchmarks/reference_speed.py

clean:
	rm -rf build sim_build .pytest_cache .mypy_cache .ruff_cache
