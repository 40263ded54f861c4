#!/usr/bin/env bash
# Runs every test Gatehouse has, on a fresh Debian machine or a developer's: installs what the
# tests need (Chromium, npm and PyPI packages, PostgreSQL where used, all pinned), checks
# formatting, lints and crate boundaries, builds once, runs the Rust tests, then the slower
# end-to-end suites (browser, real agent CLIs, MCP servers and clients, SDKs with their
# frameworks, the kernel sandbox, PostgreSQL team mode, fuzz smoke, the neural tier) — those that share no state run
# side by side, each into its own log — and a quick benchmark smoke run.
#
# Usage: scripts/test.sh            everything (what CI runs)
#        GATEHOUSE_SKIP_BENCH=1 scripts/test.sh    everything but the benchmark smoke run
#        GATEHOUSE_SUITES="e2e mcp" scripts/test.sh    only these end-to-end suites (names below)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"
started=$SECONDS

step() { printf '\n== %s (at %ds)\n' "$*" "$((SECONDS - started))"; }

logs="$repo/target/test-logs"
mkdir -p "$logs"

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

# The binary every end-to-end suite drives (built by the tests above already).
cargo build -p gatehouse --locked
export GATEHOUSE_BIN="$repo/target/debug/gatehouse"

# --- end-to-end suites -------------------------------------------------------------------------
# name → command. Each runs from the repository root with GATEHOUSE_BIN set, writes its output
# to target/test-logs/NAME.log, and must print its own runner's closing line.
declare -A suites
suite_order=()
add_suite() {
    suites[$1]="$2"
    suite_order+=("$1")
}

# Slowest first, so the last pair to finish is short.
for extra in agents sdks mcp; do
    add_suite "$extra" "scripts/test-$extra.sh"
done
add_suite e2e "node --test --test-concurrency=1 tests/e2e/*.test.mjs"
add_suite minilm 'GATEHOUSE_MINILM_DIR="$(scripts/fetch-minilm.sh)" && export GATEHOUSE_MINILM_DIR &&
    cargo clippy -p gatehouse --all-targets --locked --features minilm -- -D warnings &&
    cargo clippy -p gatehouse-classifier --all-targets --locked --features minilm -- -D warnings &&
    cargo test --release --locked -p gatehouse-classifier --features minilm minilm'
for extra in postgres sandbox cli; do
    add_suite "$extra" "scripts/test-$extra.sh"
done
add_suite fuzz "scripts/fuzz.sh ${GATEHOUSE_FUZZ_SECONDS:-20}"

selected=("${suite_order[@]}")
if [ -n "${GATEHOUSE_SUITES:-}" ]; then
    read -r -a selected <<<"$GATEHOUSE_SUITES"
fi

# Suites that share no state run side by side, two at a time on a 2-core machine (most of their
# time is spent waiting on child processes, package installs and the network on loopback).
parallel="${GATEHOUSE_TEST_JOBS:-2}"
step "end-to-end suites: ${selected[*]} (${parallel} at a time; logs in target/test-logs)"
declare -A pids=()
declare -A began=()
failed=()
wait_one() {
    local name
    while :; do
        for name in "${!pids[@]}"; do
            if ! kill -0 "${pids[$name]}" 2>/dev/null; then
                local status=0
                wait "${pids[$name]}" || status=$?
                local took=$((SECONDS - ${began[$name]}))
                if [ "$status" -eq 0 ]; then
                    printf -- '-- %s passed in %ds; its last lines:\n' "$name" "$took"
                    tail -n 5 "$logs/$name.log" | sed 's/^/   | /'
                else
                    printf -- '-- %s FAILED (exit %d) in %ds; its log:\n' "$name" "$status" "$took"
                    tail -n 200 "$logs/$name.log" | sed 's/^/   | /'
                    failed+=("$name")
                fi
                unset "pids[$name]"
                return
            fi
        done
        sleep 1
    done
}
for name in "${selected[@]}"; do
    if [ -z "${suites[$name]+x}" ]; then
        echo "unknown suite: $name (known: ${suite_order[*]})" >&2
        exit 2
    fi
    while [ "${#pids[@]}" -ge "$parallel" ]; do wait_one; done
    echo "-- starting $name"
    began[$name]=$SECONDS
    bash -c "set -euo pipefail; ${suites[$name]}" >"$logs/$name.log" 2>&1 &
    pids[$name]=$!
done
while [ "${#pids[@]}" -gt 0 ]; do wait_one; done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed suites: ${failed[*]}" >&2
    exit 1
fi

if [ "${GATEHOUSE_SKIP_BENCH:-0}" != "1" ]; then
    step "benchmark smoke run (figures are indicative only: --quick)"
    cargo run --release --locked -p gatehouse-bench -- --quick
fi

step "all tests passed in $((SECONDS - started)) s"
