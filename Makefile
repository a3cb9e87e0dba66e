# Every target bootstraps its own virtualenv (.venv) on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Nothing may reach out: no ECS metadata lookups from the credential chain.
export ALIBABA_CLOUD_ECS_METADATA_DISABLED := true

.PHONY: stack test bench vectors package clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

stack: $(STAMP)   ## run emulator + both functions + web page locally
	$(BIN)/python -m devstack $(ARGS)

test:             ## run every test (installs Debian's chromium if missing, as root, and axe-core from npm for the a11y tests)
	@sh devstack/ensure-chromium.sh
	@$(MAKE) --no-print-directory $(STAMP)
	@[ -d tests/browser/node_modules/axe-core ] || (cd tests/browser && npm ci --silent --no-audit --no-fund)
	@[ -d tests/browser/multipart-uppy/node_modules/@uppy/aws-s3 ] || (cd tests/browser/multipart-uppy && npm ci --silent --no-audit --no-fund)
	@[ -d tests/browser/widgets/node_modules ] || (cd tests/browser/widgets && npm ci --silent --no-audit --no-fund)
	@[ -d packages/js/node_modules/typescript ] || (cd packages/js && npm ci --silent --no-audit --no-fund)
	@[ -d tests/emulator/ali-oss/node_modules/ali-oss ] || (cd tests/emulator/ali-oss && npm ci --silent --no-audit --no-fund)
	$(BIN)/python -m pytest $(ARGS)

bench: $(STAMP)   ## run the benchmarks, print the table, write bench/results.json
	$(BIN)/python -m bench $(ARGS)

vectors:          ## regenerate golden signature vectors with the ali-oss SDK (needs npm)
	cd tools/golden && npm ci --silent && node generate.js

clean:
	rm -rf $(VENV) .pytest_cache build
