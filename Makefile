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

.PHONY: install test demo gallery lab zoo chromium bench clean wheelhouse gpu-check

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

# Benchmarks print ratio lines (RATIO ...) against their peer package and the physical floor, both measured
# in the same run (minutes each on a CPU). The peers come from bench/requirements.txt, installed with
# constraints.txt (no pinned version moves) into their own environment $(BENCH_VENV), layered over $(VENV):
# its one .pth file adds $(VENV)'s site-packages (our pinned stack and the editable interp), so the peers
# never enter the default install. They have to stay out: tuned-lens's wheel ships a top-level `tests`
# package, which would shadow this repository's tests/ in $(VENV) and break `make test`. If the peers cannot
# be installed the benches still run and say "peer not installed: <reason>". bench/_*.py are shared helpers.
BENCH_VENV := .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_STAMP := $(BENCH_VENV)/.bench-installed

$(BENCH_STAMP): bench/requirements.txt constraints.txt $(STAMP)
	@test -x $(BENCH_PY) || $(PY) -m venv $(BENCH_VENV)
	@$(PY) -c "import site; print('import site; site.addsitedir(%r)' % site.getsitepackages()[0])" \
		> "$$($(BENCH_PY) -c 'import site; print(site.getsitepackages()[0])')/interp-base.pth"
	@$(BENCH_PY) -m pip install -q -c constraints.txt -r bench/requirements.txt && touch $@ \
		|| echo "WARNING: the bench peers did not install; their ratio lines will say 'peer not installed'."

# Every RATIO line is also appended to out/bench-ratios.txt and repeated at the end; a failing bench does
# not stop the others, but makes the target fail. `make bench BENCH_ARGS=--quick` is a smoke run of them all.
BENCH_ARGS ?=
bench: install $(BENCH_STAMP)
	@mkdir -p out; rm -f out/bench-ratios.txt
	@echo "== $$(date -u +%FT%TZ) load average $$(cut -d' ' -f1-3 /proc/loadavg) on $$(nproc) cores"
	@failed=""; for b in bench/[!_]*.py; do echo "== $$b"; \
		BENCH_RATIOS=out/bench-ratios.txt $(BENCH_PY) $$b --threads 1 $(BENCH_ARGS) || failed="$$failed $$b"; done; \
	echo "== every ratio line (out/bench-ratios.txt); load average now $$(cut -d' ' -f1-3 /proc/loadavg)"; \
	cat out/bench-ratios.txt 2>/dev/null; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi

# ---------------------------------------------------------------------------------------- GPU check
# `make wheelhouse`, where a package index is reachable: the pinned packages the GPU check imports (measured
# by tests/gpu/requirements.py; torch excluded) downloaded into $(WHEELHOUSE)/ (ignored by git). Copy the
# checkout with that folder to a CUDA machine that has torch and transformers but no network, and run
# `make gpu-check` there: it installs them with --no-index into $(GPU_SITE)/ (beside the machine's own
# packages, which it never touches) and runs tests/gpu/. DEVELOPING.md ("GPU check") has the details.
WHEELHOUSE ?= .wheelhouse
WHEEL_PYTHON ?=
GPU_PYTHON ?= python3
GPU_SITE ?= .gpusite
GPU_KEEP ?=
WHEEL_TARGET = $(if $(WHEEL_PYTHON),--python-version $(WHEEL_PYTHON) --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any,)

wheelhouse: install
	@mkdir -p $(WHEELHOUSE)
	OMP_NUM_THREADS=1 $(PY) tests/gpu/requirements.py > $(WHEELHOUSE)/requirements.txt
	$(PIP) download -q --no-deps $(WHEEL_TARGET) -d $(WHEELHOUSE) -r $(WHEELHOUSE)/requirements.txt
	@for f in $(WHEELHOUSE)/*.tar.gz $(WHEELHOUSE)/*.zip; do \
		[ -e "$$f" ] || continue; $(PIP) wheel -q --no-deps -w $(WHEELHOUSE) "$$f" && rm "$$f"; done
	@echo "$$(ls $(WHEELHOUSE)/*.whl | wc -l) wheels, $$(du -sh $(WHEELHOUSE) | cut -f1), in $(WHEELHOUSE)/"

gpu-check:
	@test -f $(WHEELHOUSE)/requirements.txt || { echo "No $(WHEELHOUSE)/requirements.txt: run 'make wheelhouse' where a package index is reachable and copy $(WHEELHOUSE)/ here."; exit 1; }
	@$(GPU_PYTHON) -c "import torch, transformers; assert torch.cuda.is_available(), 'torch sees no CUDA GPU'" \
		|| { echo "gpu-check needs $(GPU_PYTHON) with a CUDA build of torch, transformers, and a visible GPU."; exit 1; }
	@keep="$(GPU_KEEP)"; pattern=$$(echo "$$keep" | tr ' ' '|'); \
		grep -v '^#' $(WHEELHOUSE)/requirements.txt | { if [ -n "$$keep" ]; then grep -v -i -E "^($$pattern)=="; else cat; fi; } \
		> $(WHEELHOUSE)/install.txt
	$(GPU_PYTHON) -m pip install -q --no-index --no-deps --upgrade --find-links $(WHEELHOUSE) --target $(GPU_SITE) -r $(WHEELHOUSE)/install.txt
	PYTHONPATH=$(CURDIR)/$(GPU_SITE):$(CURDIR) $(GPU_PYTHON) -m pytest tests/gpu -m gpu -p no:cacheprovider -q -rA

clean:
	rm -rf out .pytest_cache $(BENCH_VENV)
