# Every target bootstraps its own virtualenv (.venv) on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Nothing may reach out: no ECS metadata lookups from the credential chain.
export ALIBABA_CLOUD_ECS_METADATA_DISABLED := true

.PHONY: stack setup test bench vectors package clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

stack: $(STAMP)   ## run emulator + both functions + web page locally
	$(BIN)/python -m devstack $(ARGS)

setup: $(STAMP)   ## create or verify the cloud infrastructure .env describes (roles, SLS, Tablestore, bucket); ARGS=--dry-run to only read
	$(BIN)/python -m deploy.setup --env-file .env $(ARGS)

test:             ## run every test (installs Debian's chromium if missing, as root; from npm: axe-core for the a11y tests, the `s` CLI for the deploy rehearsal)
	@sh devstack/ensure-chromium.sh
	@$(MAKE) --no-print-directory $(STAMP)
	@[ -d tests/browser/node_modules/axe-core ] || (cd tests/browser && npm ci --silent --no-audit --no-fund)
	@[ -d tests/browser/multipart-uppy/node_modules/@uppy/aws-s3 ] || (cd tests/browser/multipart-uppy && npm ci --silent --no-audit --no-fund)
	@[ -d tests/browser/widgets/node_modules ] || (cd tests/browser/widgets && npm ci --silent --no-audit --no-fund)
	@[ -d packages/js/node_modules/typescript ] || (cd packages/js && npm ci --silent --no-audit --no-fund)
	@[ -d tests/emulator/ali-oss/node_modules/ali-oss ] || (cd tests/emulator/ali-oss && npm ci --silent --no-audit --no-fund)
	@[ -x tests/deploy/fc_standin/node_modules/.bin/s ] || (cd tests/deploy/fc_standin && npm ci --silent --no-audit --no-fund)
	@$(BIN)/python tests/emulator/upstream/fetch.py >/dev/null  # oss2's own test suite, from its PyPI sdist (pinned by hash)
	$(BIN)/python -m pytest $(ARGS)

bench: $(STAMP)   ## run the benchmarks, print the table, write bench/results.json
	$(BIN)/python -m bench $(ARGS)

vectors:          ## regenerate golden signature vectors with the ali-oss SDK (needs npm)
	cd tools/golden && npm ci --silent && node generate.js

clean:
	rm -rf $(VENV) .pytest_cache build
