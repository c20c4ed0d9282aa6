# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= out/demo
DEMO_SPEC ?= us-passport
# The astronaut portrait: Grace Hopper wears glasses, which a US passport photo may not show.
DEMO_SAMPLE ?= astronaut

.PHONY: setup venv models system-deps services demo test test-fast lint bench clean

setup: venv models

venv: $(STAMP)
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

models: venv
	$(VENV)/bin/idphoto models fetch

# Debian packages the tests need: Chromium for the browser test, Ceph radosgw as a real S3 server.
system-deps:
	bash tools/system-deps.sh

# RabbitMQ and Redis are started before a session on this machine kind; start any that is down.
services:
	bash tools/services.sh

demo: setup
	$(VENV)/bin/idphoto make "$$($(PY) -m idphoto.samples $(DEMO_SAMPLE))" --spec $(DEMO_SPEC) --out $(DEMO_OUT)
	@echo
	@echo "Open the web form: $(VENV)/bin/idphoto serve, then http://127.0.0.1:8000/ (English and 中文)"

test: setup system-deps services
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not integration and not browser"

lint: venv
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) bench/pipeline.py

clean:
	rm -rf $(VENV) out var .pytest_cache
