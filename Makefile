# Stagedoor: every developer task is a make target.
#   make dev       build all functions, run them on local Workers (wrangler dev, D1 + KV)
#   make dev-spin  the same on the Spin test host (SQLite + key-value files in .spin/)
#   make jobs      run the scheduled jobs (retention) once against the local Workers state
#   make test      native tests, then the end-to-end suite on both runtimes
#   make bench     sizes, req/s and latency per route vs baselines (bench/results/latest.md)
#   make soak      10,000 concurrent signups + a 200 burst on both runtimes: no loss, no duplicates, exact limits
#   make fuzz      every fuzz target for FUZZ_SECONDS (default 60) each
# Tools are installed on first use, at pinned versions, and skipped when present.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Pins that must match: the wasm-bindgen CLI must equal the wasm-bindgen
# library in Cargo.lock (checked by shared/tests/tidy.rs).
WASM_BINDGEN_VERSION := 0.2.130

FUNCTIONS := signup unsubscribe links dashboard studio jobs webhooks
PORT ?= 8787
SPIN_PORT ?= 3000

CARGO_BIN := $(HOME)/.cargo/bin
NPM_BIN := $(CURDIR)/node_modules/.bin
STATE := $(CURDIR)/.wrangler/state

# The Workers build (tools/build-worker.sh) takes its tools from these.
export WASM_BINDGEN_BIN := $(CARGO_BIN)/wasm-bindgen
export WASM_OPT_BIN := $(NPM_BIN)/wasm-opt
export ESBUILD_BIN := $(NPM_BIN)/esbuild
# Quiet, offline wrangler with its config and logs inside the repo.
export WRANGLER_SEND_METRICS := false
export WRANGLER_SEND_ERROR_REPORTS := false
export CLOUDFLARE_CF_FETCH_ENABLED := false
export XDG_CONFIG_HOME := $(CURDIR)/.wrangler/config
export WRANGLER_LOG_PATH := $(CURDIR)/.wrangler/logs

.PHONY: help tools rust-targets wasm-bindgen npm geo-test-data geo-data \
        build build-workers build-workers-dev build-spin spin-host secrets migrate \
        dev dev-spin jobs dev-link admin artist api-token test lint test-js test-native test-browser test-e2e e2e-suite soak fuzz bench bench-spin-baseline clean

help:
	@grep -E '^#   make' Makefile | sed 's/^#   //'

## Tools ---------------------------------------------------------------------

tools: rust-targets wasm-bindgen npm geo-test-data

rust-targets:
	@installed=$$(rustup target list --installed); \
	for t in wasm32-unknown-unknown wasm32-wasip2; do \
	  grep -qx $$t <<<"$$installed" || rustup target add $$t; \
	done

# Not --locked: the registry mirror lacks one of its pinned transitive versions.
wasm-bindgen:
	@if [ "$$($(CARGO_BIN)/wasm-bindgen --version 2>/dev/null | awk '{print $$2}')" != "$(WASM_BINDGEN_VERSION)" ]; then \
	  echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) (once; ~9 min cold)"; \
	  cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); \
	fi

npm: node_modules/.package-lock.json
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

geo-test-data:
	@tools/geo-data.sh test

geo-data:
	@tools/geo-data.sh dbip

## Build ---------------------------------------------------------------------

build: build-workers build-spin

# Release builds with wasm-opt: what gets deployed and measured. Our own
# script rather than worker-build: same steps, a lighter entry module
# (tools/worker-shim.js), one tool less to install.
build-workers: tools
	@for f in $(FUNCTIONS); do echo "building $$f (Workers)"; tools/build-worker.sh $$f; done

# Faster builds for `make dev`: same code, no wasm-opt pass.
build-workers-dev: tools
	@for f in $(FUNCTIONS); do echo "building $$f (Workers, no wasm-opt)"; tools/build-worker.sh $$f --no-opt; done

build-spin: rust-targets
	cargo build --release --target wasm32-wasip2 --features spin $(addprefix -p ,$(FUNCTIONS))

# The Spin test host, built once with its own profile (Cargo.toml
# [profile.host]: optimised, no LTO); `make test-e2e` tests it with the same
# profile, so nothing is compiled twice. In a target directory of its own:
# Cargo lets one build at a time use a target directory, and `make test`
# builds the host in the background while the other suites run.
SPIN_HOST := target/host/spin-host
HOST_CARGO := CARGO_TARGET_DIR=$(CURDIR)/target/host-build cargo
spin-host:
	$(HOST_CARGO) build --profile host -p spin-host
	@mkdir -p $(dir $(SPIN_HOST)); cp -p target/host-build/host/spin-host $(SPIN_HOST)

## Local runtimes --------------------------------------------------------------

# Local keys, generated once and kept in git-ignored files. Production keys
# are Worker secrets / Spin variables (see README).
secrets:
	@mkdir -p .wrangler; touch .wrangler/dev-secrets
	@key() { head -c32 /dev/urandom | base64; }; \
	grep -q '^DATA_KEYS=' .wrangler/dev-secrets || echo "DATA_KEYS=k1:$$(key)" >> .wrangler/dev-secrets; \
	grep -q '^INDEX_KEY=' .wrangler/dev-secrets || echo "INDEX_KEY=$$(key)" >> .wrangler/dev-secrets; \
	grep -q '^TOKEN_KEYS=' .wrangler/dev-secrets || echo "TOKEN_KEYS=t1:$$(key)" >> .wrangler/dev-secrets; \
	grep -q '^JOBS_SECRET=' .wrangler/dev-secrets || echo "JOBS_SECRET=$$(head -c32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')" >> .wrangler/dev-secrets
	@# Inbound webhooks (README "Inbound webhooks"): a local whsec_ secret for
	@# the resend provider, to sign test requests with.
	@grep -q '^EMAIL_WEBHOOK_SECRETS_RESEND=' .wrangler/dev-secrets || echo "EMAIL_WEBHOOK_SECRETS_RESEND=whsec_$$(head -c32 /dev/urandom | base64)" >> .wrangler/dev-secrets
	@# Local only: shipped config has no http:// origin (mail links carry tokens).
	@grep -q '^PUBLIC_BASE_URL=' .wrangler/dev-secrets || echo "PUBLIC_BASE_URL=http://localhost:$(PORT)" >> .wrangler/dev-secrets
	@for f in $(FUNCTIONS); do cp .wrangler/dev-secrets functions/$$f/.dev.vars; done
	@# Local only: lets the sign-in link `make dev` prints work in any browser.
	@echo "ALLOW_UNBOUND_SIGN_IN=1" >> functions/dashboard/.dev.vars

WRANGLER := $(NPM_BIN)/wrangler
WORKER_CONFIGS := -c wrangler.toml $(foreach f,$(FUNCTIONS),-c functions/$(f)/wrangler.toml)

migrate: npm
	$(WRANGLER) d1 migrations apply DB --local -c wrangler.toml --persist-to $(STATE)
	$(WRANGLER) d1 execute DB --local -c wrangler.toml --persist-to $(STATE) --file tools/seed-demo.sql >/dev/null

# The demo artist's owner (owner@demo.example) and a fresh sign-in link
# for them, valid 10 minutes, in any browser (local dev only).
ADMIN := target/release/stagedoor-admin
admin:
	cargo build --quiet --release -p admin

dev-link: admin secrets migrate
	@set -a; source .wrangler/dev-secrets; set +a; \
	$(ADMIN) user --artist demo-artist --email owner@demo.example --role owner > .wrangler/dev-owner.sql; \
	$(ADMIN) sign-in-link --email owner@demo.example --base http://localhost:$(PORT) 2> .wrangler/dev-link >> .wrangler/dev-owner.sql; \
	$(WRANGLER) d1 execute DB --local -c wrangler.toml --persist-to $(STATE) --file .wrangler/dev-owner.sql >/dev/null; \
	echo "  Dashboard:     $$(cat .wrangler/dev-link)   (signs in as owner@demo.example; 10 minutes; new one: make dev-link)"

# Creates an artist and its first owner. Local D1 by default; REMOTE=1 for
# the deployed one (keys from your environment: DATA_KEYS, INDEX_KEY).
# Spin: see README ("Create the first artist").
artist: admin npm
	@mkdir -p .wrangler
	@[ -n "$(NAME)" ] && [ -n "$(OWNER)" ] || { echo "usage: make artist NAME='Artist name' OWNER=owner@example.com [ID=slug] [REMOTE=1]" >&2; exit 2; }
	@$(if $(REMOTE),,set -a; source .wrangler/dev-secrets; set +a;) \
	$(ADMIN) artist --name "$(NAME)" --owner "$(OWNER)" $(if $(ID),--id "$(ID)") > .wrangler/artist.sql; \
	$(WRANGLER) d1 execute DB $(if $(REMOTE),--remote,--local --persist-to $(STATE)) -c wrangler.toml --file .wrangler/artist.sql >/dev/null; \
	rm -f .wrangler/artist.sql; echo "created; $(OWNER) can sign in at /app/sign-in"

dev: build-workers-dev secrets migrate
	@echo
	@echo "  Stagedoor is starting on http://localhost:$(PORT)"
	@echo "  Capture page:  http://localhost:$(PORT)/s/demo"
	@echo "  JSON signup:   curl -X POST http://localhost:$(PORT)/api/v1/signup -H 'content-type: application/json' \\"
	@echo "                   -d '{\"page\":\"demo\",\"email\":\"you@example.com\",\"consent\":true}'"
	@echo "  Fans:          $(WRANGLER) d1 execute DB --local -c wrangler.toml --persist-to .wrangler/state --command 'SELECT status,country,region,city FROM fans'"
	@echo "  Smart link:    http://localhost:$(PORT)/l/demo   (API token for /api/v1/app/links: make api-token)"
	@$(MAKE) --no-print-directory dev-link
	@echo
	$(WRANGLER) dev $(WORKER_CONFIGS) --port $(PORT) --ip 127.0.0.1 --persist-to $(STATE)

dev-spin: build-spin spin-host geo-data secrets
	@mkdir -p .spin
	@echo
	@echo "  Stagedoor (Spin) is starting on http://localhost:$(SPIN_PORT)"
	@echo "  Capture page:  http://localhost:$(SPIN_PORT)/s/demo"
	@echo "  Smart link:    http://localhost:$(SPIN_PORT)/l/demo"
	@echo
	set -a; source .wrangler/dev-secrets; set +a; \
	SPIN_VARIABLE_PUBLIC_BASE_URL=http://localhost:$(SPIN_PORT) SPIN_VARIABLE_DATA_KEYS="$$DATA_KEYS" SPIN_VARIABLE_INDEX_KEY="$$INDEX_KEY" SPIN_VARIABLE_TOKEN_KEYS="$$TOKEN_KEYS" \
	SPIN_VARIABLE_JOBS_SECRET="$$JOBS_SECRET" SPIN_VARIABLE_EMAIL_WEBHOOK_SECRETS_RESEND="$$EMAIL_WEBHOOK_SECRETS_RESEND" \
	$(SPIN_HOST) --from spin.toml --listen 127.0.0.1:$(SPIN_PORT) --state-dir .spin --sqlite @schema/spin/wal.sql --cron /jobs/run=60 \
	  $(foreach f,$(sort $(wildcard schema/*.sql)),--sqlite @$(f)) --sqlite @tools/seed-demo.sql

# The scheduled jobs once, by hand, against the local Workers state
# (.wrangler/state): through the running `make dev` when there is one,
# else a short-lived wrangler dev of the jobs Worker alone. Either way the
# jobs Worker's `scheduled` handler runs, as a Cron Trigger runs it; its
# report is the JSON line in wrangler's output. On Spin the jobs run every
# minute under `make dev-spin`; by hand:
#   curl -X POST -H "Authorization: Bearer $$JOBS_SECRET" http://localhost:3000/jobs/run
jobs: npm secrets migrate
	@tools/run-jobs.sh $(PORT) $(STATE)

# An artist API token for /api/v1/app/links, printed once: only its SHA-256
# is stored. `make api-token ARTIST=<artist id>` (default demo-artist) on the
# local D1; add REMOTE=1 for the deployed one. Spin: see README.
api-token: npm
	@artist='$(or $(ARTIST),demo-artist)'; \
	[[ "$$artist" =~ ^[A-Za-z0-9_-]+$$ ]] || { echo "ARTIST must be an artist id (letters, digits, - and _)" >&2; exit 2; }; \
	token="sd_$$(head -c32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"; \
	hash=$$(printf '%s' "$$token" | sha256sum | cut -d' ' -f1); \
	out=$$($(WRANGLER) d1 execute DB $(if $(REMOTE),--remote,--local --persist-to $(STATE)) -c wrangler.toml --json --command \
	  "INSERT INTO api_tokens (id, artist_id, token_hash, label, created_at) SELECT lower(hex(randomblob(16))), id, '$$hash', 'make api-token', CAST(strftime('%s','now') AS INTEGER) * 1000 FROM artists WHERE id = '$$artist' RETURNING artist_id") \
	  || { echo "$$out" >&2; exit 1; }; \
	grep -q '"artist_id"' <<<"$$out" || { echo "no artist with id '$$artist' (run make migrate first?)" >&2; exit 1; }; \
	echo "$$token"

## Tests -----------------------------------------------------------------------

# Cargo's summaries close the run (CI reads them): the browser suite runs
# before the end-to-end one.
#
# The Spin test host (wasmtime, Cranelift: about 4.5 of a fresh clone's
# 17 minutes of CPU on 2 cores) is built at the lowest priority while the
# other suites run, so it takes the cores they leave idle (single-threaded
# LTO links, the browser suite's waits); the end-to-end suite waits for
# it. `set -m` gives it a process group to stop it by (a failure or an
# interrupt anywhere stops it too) while keeping it in this session: a
# session of its own would be a scheduling group of its own, where its
# nice value counts for nothing against the suites.
test:
	@set -m; mkdir -p target; log=target/spin-host-build.log; \
	nice -n 19 $(MAKE) --no-print-directory spin-host >$$log 2>&1 & host=$$!; \
	trap 'kill -- -$$host 2>/dev/null || true' EXIT; \
	$(MAKE) --no-print-directory lint test-js test-native test-browser build-spin geo-test-data; \
	echo "make test: waiting for the Spin test host (built in the background, log: $$log)"; waited=$$(date +%s); \
	wait $$host || { cat $$log; echo "make test: building the Spin test host failed" >&2; exit 1; }; \
	echo "make test: waited $$(( $$(date +%s) - waited )) s for the Spin test host"; \
	$(MAKE) --no-print-directory e2e-suite

# Formatting and clippy, warnings as errors (rustfmt.toml, clippy.toml).
lint:
	@cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1 || rustup component add rustfmt clippy
	cargo fmt --check
	cargo clippy --quiet --workspace --all-targets --features shared/native -- -D warnings

# The Workers entry module (tools/worker-shim.js) and the generated service
# marks (tools/icons.mjs reads the pinned simple-icons package).
test-js: npm
	node --test tools/

test-native: geo-test-data
	cargo test --workspace --exclude e2e --exclude spin-host --features shared/native

# The dashboard in headless Chromium (Debian's, installed by
# tools/chromium.sh; playwright-core drives it). Starts its own wrangler dev;
# screenshots go to target/browser/screenshots/.
test-browser: build-workers npm
	@tools/chromium.sh
	node --test tests/browser/

# The e2e suite starts and stops wrangler dev and the Spin host itself.
# `e2e-suite` runs it on what is already built (`make test` builds first).
test-e2e: build-workers build-spin spin-host geo-test-data
	@$(MAKE) --no-print-directory e2e-suite

e2e-suite:
	$(HOST_CARGO) test --profile host -p spin-host
	cargo test -p e2e --test e2e

# "No loss under concurrency", full size (tests/e2e/SOAK.md): 10,000 signups
# from 64 clients, 20% duplicates, and a 200-signup burst, on both runtimes.
# `make test` runs the short version (1,000 / 16 / 200) in the e2e suite.
soak: build-workers build-spin spin-host geo-test-data
	SOAK_SIGNUPS=10000 SOAK_CLIENTS=64 SOAK_BURST=200 SOAK_MAX_SECONDS=900 \
	  cargo test -p e2e --test e2e -- soak

# Every fuzz target for FUZZ_SECONDS each (default 60), with a table of
# executions, coverage and crashes (fuzz/README.md). Needs the nightly
# toolchain; installs cargo-fuzz once.
fuzz:
	fuzz/run.sh $(or $(FUZZ_SECONDS),60)

## Benchmarks ------------------------------------------------------------------

BENCH_PY := $(CURDIR)/.tools/bench-venv/bin/python

# Release artefacts (wasm-opt on Workers), the Spin host when its source is
# in the tree, the Spin baseline component, the load generator and chart
# library (bench/tools.sh), then one report: see bench/README.md.
# Knobs: BENCH_SECONDS=3 BENCH_REPEATS=3 BENCH_RUNTIMES="workers spin"
# BENCH_ROUTES="<route ids>" BENCH_DROP=5000 BENCH_SPIN_HOST=<path>.
bench:
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory build-workers build-spin bench-spin-baseline secrets geo-test-data; \
	if [ -f tools/spin-host/Cargo.toml ]; then \
	  $(MAKE) --no-print-directory spin-host || echo "bench: make spin-host failed; the Spin table uses whatever $(SPIN_HOST) exists"; \
	else echo "bench: tools/spin-host is not in this tree yet; the Spin table will say so"; fi; \
	bench/tools.sh; \
	BENCH_BUILD_SECONDS=$$(( $$(date +%s) - start )) BENCH_FUNCTIONS="$(FUNCTIONS)" $(BENCH_PY) bench/bench.py

# Bench only: the Spin counterpart of bench/baselines/workers/*.js.
bench-spin-baseline: rust-targets
	cargo build --release --target wasm32-wasip2 --features spin -p bench-spin-baseline

clean:
	cargo clean
	rm -rf .wrangler .spin functions/*/build
