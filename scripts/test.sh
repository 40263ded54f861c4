#!/usr/bin/env bash
# Runs every test Gatehouse has, on a fresh Debian machine or a developer's: installs what the
# tests need (Chromium, npm and PyPI packages, PostgreSQL where used, all pinned), checks
# formatting, builds the binary and starts the end-to-end suites that drive only it (browser, real
# agent CLIs, MCP servers and clients, SDKs with their frameworks, the kernel sandbox) in the
# background, two at a time, each into its own log; meanwhile lints, checks crate boundaries and
# runs the Rust tests (with a throwaway PostgreSQL cluster for team mode); then the suites that
# build with cargo (fuzz smoke, the neural tier), and a quick benchmark smoke run. Prints how long
# each step and suite took.
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

# --- end-to-end suites -------------------------------------------------------------------------
# name → command. Each runs from the repository root with GATEHOUSE_BIN set, writes its output
# to target/test-logs/NAME.log, and must print its own runner's closing line.
declare -A suites
suite_order=()
add_suite() {
    suites[$1]="$2"
    suite_order+=("$1")
}
# Suites that drive only the built binary (no cargo): they start as soon as it is built and run
# while the lints and the Rust tests compile — most of their time is spent waiting on child
# processes, package installs and loopback traffic, which overlaps well with a compiler. Slowest
# first, so the last pair to finish is short.
early_suites=(agents sdks e2e mcp sandbox)
for extra in agents sdks mcp sandbox; do
    add_suite "$extra" "scripts/test-$extra.sh"
done
add_suite e2e "node --test --test-concurrency=1 tests/e2e/*.test.mjs"
# Suites that run cargo themselves: after the Rust tests (one build directory, one lock).
late_suites=(minilm fuzz)
add_suite minilm 'GATEHOUSE_MINILM_DIR="$(scripts/fetch-minilm.sh)" && export GATEHOUSE_MINILM_DIR &&
    cargo clippy -p gatehouse -p gatehouse-classifier --all-targets --locked \
        --features gatehouse/minilm,gatehouse-classifier/minilm -- -D warnings &&
    cargo test --release --locked -p gatehouse-classifier --features minilm minilm'
add_suite fuzz "scripts/fuzz.sh ${GATEHOUSE_FUZZ_SECONDS:-20}"

if [ -n "${GATEHOUSE_SUITES:-}" ]; then
    read -r -a wanted <<<"$GATEHOUSE_SUITES"
    for name in "${wanted[@]}"; do
        if [ -z "${suites[$name]+x}" ]; then
            echo "unknown suite: $name (known: ${suite_order[*]})" >&2
            exit 2
        fi
    done
    keep() { local n w out=(); for n in "$@"; do for w in "${wanted[@]}"; do [ "$n" = "$w" ] && out+=("$n"); done; done; echo "${out[@]}"; }
    read -r -a early_suites <<<"$(keep "${early_suites[@]}")"
    read -r -a late_suites <<<"$(keep "${late_suites[@]}")"
fi

# Runs the named suites, PARALLEL at a time, each into its own log; prints a line per suite as it
# ends (the log's tail, or 200 lines of it when it failed) and returns 1 if any failed.
run_suites() {
    local parallel="$1"
    shift
    local -A pids=() began=()
    local failed=() name
    wait_one() {
        local n status took
        while :; do
            for n in "${!pids[@]}"; do
                if ! kill -0 "${pids[$n]}" 2>/dev/null; then
                    status=0
                    wait "${pids[$n]}" || status=$?
                    took=$((SECONDS - ${began[$n]}))
                    if [ "$status" -eq 0 ]; then
                        printf -- '-- %s passed in %ds; its last lines:\n' "$n" "$took"
                        tail -n 5 "$logs/$n.log" | sed 's/^/   | /'
                    else
                        printf -- '-- %s FAILED (exit %d) in %ds; its log:\n' "$n" "$status" "$took"
                        tail -n 200 "$logs/$n.log" | sed 's/^/   | /'
                        failed+=("$n")
                    fi
                    unset "pids[$n]"
                    return
                fi
            done
            sleep 1
        done
    }
    for name in "$@"; do
        while [ "${#pids[@]}" -ge "$parallel" ]; do wait_one; done
        echo "-- starting $name (at $((SECONDS - started))s)"
        began[$name]=$SECONDS
        bash -c "set -euo pipefail; ${suites[$name]}" >"$logs/$name.log" 2>&1 &
        pids[$name]=$!
    done
    while [ "${#pids[@]}" -gt 0 ]; do wait_one; done
    if [ "${#failed[@]}" -gt 0 ]; then
        echo "failed suites: ${failed[*]}"
        return 1
    fi
}

parallel="${GATEHOUSE_TEST_JOBS:-2}"

step "building everything the tests need (debug)"
# One build for the Rust tests and the binary the suites drive. (`cargo build -p gatehouse` alone
# would resolve other features of shared dependencies than the workspace's tests do — tokio's
# test-util, serde's rc — and every crate above them would be compiled twice.)
cargo test --workspace --locked --no-run
# A copy: nothing below relinks it while the suites run it.
mkdir -p target/e2e-bin
cp target/debug/gatehouse target/e2e-bin/gatehouse
export GATEHOUSE_BIN="$repo/target/e2e-bin/gatehouse"

early_status=0
early_pid=
if [ "${#early_suites[@]}" -gt 0 ]; then
    step "end-to-end suites, in the background: ${early_suites[*]} (${parallel} at a time; logs in target/test-logs)"
    # Their own process group, so a failing step below stops them too (the trap).
    set -m
    run_suites "$parallel" "${early_suites[@]}" >"$logs/early-suites.txt" 2>&1 &
    early_pid=$!
    set +m
    trap 'if [ -n "${early_pid:-}" ] && kill -0 "$early_pid" 2>/dev/null; then kill -- "-$early_pid" 2>/dev/null || true; fi' EXIT
fi

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

step "rust tests (with a throwaway PostgreSQL for the ledger conformance suite and the replicas)"
# The PostgreSQL tests run inside this one `cargo test` (a separate `cargo test -p …` would resolve
# other features and compile much of the tree again); they skip only when no URL is given.
pg_dir="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-pg.XXXXXX")"
rmdir "$pg_dir"
GATEHOUSE_TEST_POSTGRES_URL="$(scripts/pg-cluster.sh start "$pg_dir")"
export GATEHOUSE_TEST_POSTGRES_URL
# tmux is installed (scripts/install-test-deps.sh), so `gatehouse watch`'s tmux test runs, not skips.
rust_status=0
GATEHOUSE_REQUIRE_TMUX=1 cargo test --workspace --locked || rust_status=$?
scripts/pg-cluster.sh stop "$pg_dir"
unset GATEHOUSE_TEST_POSTGRES_URL
if [ "$rust_status" -ne 0 ]; then exit "$rust_status"; fi

late_status=0
if [ "${#late_suites[@]}" -gt 0 ]; then
    step "end-to-end suites that build with cargo: ${late_suites[*]} (${parallel} at a time)"
    run_suites "$parallel" "${late_suites[@]}" || late_status=1
fi
if [ -n "$early_pid" ]; then
    step "waiting for the background suites"
    wait "$early_pid" || early_status=1
    early_pid=
    cat "$logs/early-suites.txt"
fi
if [ "$early_status" -ne 0 ] || [ "$late_status" -ne 0 ]; then
    echo "end-to-end suites failed" >&2
    exit 1
fi

if [ "${GATEHOUSE_SKIP_BENCH:-0}" != "1" ]; then
    step "benchmark smoke run (figures are indicative only: --quick)"
    # One release build of both (their shared dependencies resolved once), then the bench without
    # rebuilding the daemon.
    cargo build --release --locked -p gatehouse -p gatehouse-bench
    # Every default scenario, and team mode on a throwaway PostgreSQL cluster (docs/TEAM.md).
    target/release/gatehouse-bench --quick --no-build \
        --scenarios fast-path,sidecar-faults,paused-flood,mcp,hooks,team
fi

step "all tests passed in $((SECONDS - started)) s"
