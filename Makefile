# Two entry points, each setting itself up on a fresh machine: `make demo` and `make test`.
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test quick bench mutate audit install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Grade the reference and the student stubs on the embedded data (topics in parallel), and print the score tables.
demo: $(STAMP)
	$(BIN)/visionbench grade reference --out results/reference.json
	$(BIN)/visionbench grade student --out results/student.json

## The whole test suite: every topic's checks against the reference, and the harness's own tests, on every core
## (the checks of one training stay in one worker); ends with what each topic cost.
test: $(STAMP)
	$(BIN)/visionbench spec check
	$(BIN)/pytest -n auto --dist loadgroup --visionbench-cost

## The quick tier only (no training): a student's edit-test loop.
quick: $(STAMP)
	$(BIN)/pytest tests/topics --tier quick

## Timing benchmarks (pytest-benchmark): implementation vs library, side by side in one run.
bench: $(STAMP)
	$(BIN)/pytest tests/benchmarks --benchmark-enable

## Mutation testing (outside `make test`): 100 sampled mutants of every reference graded on the quick tier; writes
## docs/mutation-scores.md. About 5 min on 2 cores.
mutate: $(STAMP)
	$(BIN)/visionbench mutate --sample 100 --seed 1 --table docs/mutation-scores.md

## Degenerate implementations (zeros, constant, echo, noise, a stub per interface) graded on the quick tier: lists every
## check one of them passes, exit 1 if any (also run by `make test`, tests/harness/test_audit.py).
audit: $(STAMP)
	$(BIN)/visionbench audit

clean:
	rm -rf $(VENV) results .pytest_cache
