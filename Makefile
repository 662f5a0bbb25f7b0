# The two set-up commands are `make demo` and `make test` (see README.md). Both create .venv when
# it is absent and install the project with the exact versions in constraints.txt, which also pins
# torch==2.13.0 so that pip takes the local CPU wheel instead of pulling CUDA packages.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export PYTHONUNBUFFERED := 1

.PHONY: install test demo gallery lab zoo chromium bench clean

install: $(STAMP) chromium

$(STAMP): pyproject.toml constraints.txt
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip -c constraints.txt
	$(PIP) install -q -c constraints.txt -e ".[trl]"
	@touch $(STAMP)

# Static figure export (kaleido) needs a Chromium. Install Debian's when missing and apt is usable;
# otherwise interp.viz.figures.export raises an error that says how to install one.
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; then \
		true; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "Installing Debian's chromium for static figure export..."; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| echo "WARNING: could not install chromium; figure export will fail with instructions."; \
	else \
		echo "NOTE: no Chromium found and apt is not usable; install chromium (or google-chrome) for static figure export."; \
	fi
	@# The lexicon's Hindi, Telugu, Arabic and Chinese words need fonts beyond DejaVu, or figures show boxes.
	@if command -v fc-list >/dev/null 2>&1 && [ -n "$$(fc-list :lang=hi)" ] && [ -n "$$(fc-list :lang=zh)" ]; then \
		true; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "Installing Noto and WenQuanYi fonts so figures render every script..."; \
		(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-core fonts-wqy-microhei >/dev/null \
			|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-core fonts-wqy-microhei >/dev/null)) \
			|| echo "WARNING: could not install fonts; non-Latin tokens in figures may show as boxes."; \
	else \
		echo "NOTE: install Noto fonts (Devanagari, Telugu, Arabic) and a CJK font, or figures show boxes for those scripts."; \
	fi

test: install
	$(PY) -m pytest -q -ra --durations=15

demo: install
	$(VENV)/bin/interp demo --out out

# The demo, with the README gallery written into docs/gallery (committed) instead of out/gallery.
gallery: install
	$(VENV)/bin/interp demo --out out --gallery docs/gallery

lab: install
	$(VENV)/bin/jupyter lab notebooks/

zoo: install
	$(VENV)/bin/interp zoo train --all

# Benchmarks print ratios against a baseline measured in the same run (minutes each on a CPU).
bench: install
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b --threads 1 || exit 1; done

clean:
	rm -rf out .pytest_cache
