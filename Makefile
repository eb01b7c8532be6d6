# Two commands do all set-up on a fresh machine:
#   make demo   - create .venv, install, run the main job (notebooks + sample commands) into outputs/
#   make test   - create .venv if needed, install, run the whole test suite (tiny profile)
# PROFILE=tiny makes `make demo` run offline with tiny random models (meaningless masks).

PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PROFILE ?= full
# torch/torchvision pins for a local venv; Colab keeps its own preinstalled torch.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP   := $(VENV)/.installed

.PHONY: setup demo test test-fast test-min student bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev,notebooks]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

demo: setup
	RS_HELPERS_PROFILE=$(PROFILE) $(PY) -m rs_helpers demo --out outputs

test: setup
	RS_HELPERS_PROFILE=tiny MPLBACKEND=Agg $(PY) -m pytest tests notebooks --nbmake --nbmake-timeout=600 -p no:cacheprovider $(PYTEST_ARGS)

test-fast: setup
	RS_HELPERS_PROFILE=tiny MPLBACKEND=Agg $(PY) -m pytest tests -x -q $(PYTEST_ARGS)

# The tests on the oldest dependency versions pyproject.toml allows (.ci/min-versions.txt), in .venv-min.
test-min:
	test -x .venv-min/bin/python || $(PYTHON) -m venv .venv-min
	.venv-min/bin/python -m pip install --quiet $(TORCH_SPEC)
	.venv-min/bin/python -m pip install --quiet -c .ci/min-versions.txt -e ".[dev,notebooks]"
	RS_HELPERS_PROFILE=tiny MPLBACKEND=Agg .venv-min/bin/python -m pytest tests -q -p no:cacheprovider $(PYTEST_ARGS)

student: setup
	$(PY) -m rs_helpers student --out student

bench: setup
	$(PY) -m rs_helpers bench --profile tiny

clean:
	rm -rf $(VENV) .venv-min outputs student
