# Two commands on a fresh machine: `make test` and `make demo`. Both create .venv when missing.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo lab bench gpu-check clean-runs notebook-filter

$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	# torch first, pinned: these wheels lie on the project's machines; other versions download gigabytes
	$(PYTHON) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PYTHON) -m pip install --quiet -e ".[dev,run,analysis,lab,timm]"
	$(MAKE) --no-print-directory notebook-filter PYTHON=$(PYTHON)
	touch $(STAMP)

# Outputs never reach git: nbstripout cleans notebooks as git reads them (a git filter), so a
# notebook run and saved in JupyterLab leaves `git status` clean. Needs a git checkout.
notebook-filter:
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  $(PYTHON) -m nbstripout --install --attributes .gitattributes --python $(abspath $(PYTHON)) && \
	  git config filter.nbstripout.extrakeys "metadata.language_info" && \
	  echo "nbstripout: notebooks are stripped of outputs as git reads them"; \
	else echo "not a git checkout: no notebook filter installed"; fi

# three test processes on two cores: most tests wait on notebook kernels, subprocesses and
# servers (a full run measured 64% of two cores busy with two)
test: $(STAMP)
	$(PYTHON) -m pytest -q -n 3

demo: $(STAMP)
	$(PYTHON) -m dplib.run.demo

# JupyterLab on this machine only (127.0.0.1), in the repository root, the tracked notebooks
# stripped as they are saved (dplib.notebook); the URL with its token is printed
lab: $(STAMP)
	$(PYTHON) -m dplib.notebook

bench: $(STAMP)
	for script in bench/*.py; do $(PYTHON) $$script || exit 1; done

# On a machine with an NVIDIA GPU: the gpu tests (skipped, with the reason, without CUDA),
# then the device report results/gpu/<device>.json (bench/gpu_report.py: steps/s, peak memory,
# float32 vs autocast, the grid's GPU-hours, every bench script with --device cuda). Without
# CUDA the report step stops with a one-line error.
gpu-check: $(STAMP)
	mkdir -p runs/gpu && rm -f runs/gpu/memory.jsonl
	DPLIB_GPU_RECORD=runs/gpu/memory.jsonl $(PYTHON) -m pytest -q -m gpu tests/test_gpu.py --junitxml=runs/gpu/junit.xml
	$(PYTHON) bench/gpu_report.py --device cuda

clean-runs:
	rm -rf runs
