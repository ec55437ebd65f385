# dexteleop: `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Robot models come through mujoco-menagerie; offline they are read from here.
export MENAGERIE_ROOT ?= $(abspath ../shared/menagerie)
export MUJOCO_GL ?= egl
export QT_QPA_PLATFORM ?= offscreen

.PHONY: venv demo test lint bench clips clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first, the CPU build; nothing later may replace it
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev,ui]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/dexteleop run --hand leap --device replay --controller retarget \
		--duration 20 --object cube --report out/demo/report.json --video out/demo/demo.mp4
	@echo "report: out/demo/report.json   video: out/demo/demo.mp4"

test: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: venv
	$(PY) -m bench

clips: venv
	$(PY) -m devices.inputs.clips --out assets/clips

clean:
	rm -rf out .pytest_cache .ruff_cache
