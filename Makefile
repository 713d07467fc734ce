# Two commands on a fresh machine: `make test` and `make demo`. Both create .venv when missing.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench clean-runs

$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	# torch first, pinned: these wheels lie on the project's machines; other versions download gigabytes
	$(PYTHON) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PYTHON) -m pip install --quiet -e ".[dev,slurm]"
	touch $(STAMP)

# two test processes: most tests wait on notebook kernels and subprocesses
test: $(STAMP)
	$(PYTHON) -m pytest -q -n 2

demo: $(STAMP)
	$(PYTHON) -m dplib.demo

bench: $(STAMP)
	for script in bench/*.py; do $(PYTHON) $$script || exit 1; done

clean-runs:
	rm -rf runs
