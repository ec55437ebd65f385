# dexteleop: `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Robot models come through mujoco-menagerie; offline they are read from here.
export MENAGERIE_ROOT ?= $(abspath ../shared/menagerie)
export MUJOCO_GL ?= egl
DEMO := --hand leap --device replay --controller retarget --object cube

.PHONY: venv demo test lint bench clips clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first, the CPU build; nothing later may replace it
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev,ui,gpu,franka]' -c constraints.txt
	touch $@

venv: $(VENV)/.installed

# With a display: the app opens on the simulated LEAP hand and the replay device.
# Without one (a server, CI): the same session runs headless (report + video) and the app
# runs offscreen for 10 s to save a screenshot.
demo: venv
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
		$(VENV)/bin/dexteleop app $(DEMO); \
	else \
		echo "no display: running headless, then the app offscreen for a screenshot"; \
		$(VENV)/bin/dexteleop run $(DEMO) --duration 20 \
			--report out/demo/report.json --video out/demo/demo.mp4 && \
		QT_QPA_PLATFORM=offscreen $(VENV)/bin/dexteleop app $(DEMO) --duration 10 \
			--screenshot out/demo/app.png --report out/demo/app_report.json && \
		echo "report: out/demo/report.json  video: out/demo/demo.mp4  app: out/demo/app.png"; \
	fi

test: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	QT_QPA_PLATFORM=$${QT_QPA_PLATFORM:-offscreen} $(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: venv
	$(PY) -m bench

clips: venv
	$(PY) -m devices.inputs.clips --out assets/clips

clean:
	rm -rf out .pytest_cache .ruff_cache
