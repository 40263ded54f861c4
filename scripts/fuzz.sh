#!/usr/bin/env bash
# Runs each cargo-fuzz target of fuzz/ for SECONDS (default 20) on the default (stable)
# toolchain: the smoke run in scripts/test.sh, or a longer run (docs/SECURITY.md, "Fuzzing").
# `--sanitizer none` needs no nightly: cargo-fuzz then passes only stable rustc flags.
# New inputs go to fuzz/corpus/TARGET (not committed), starting from fuzz/seeds/TARGET; a crash
# fails the run and leaves its input in fuzz/artifacts/TARGET.
#
# Usage: scripts/fuzz.sh [SECONDS [TARGET...]]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

seconds="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(check_decode policy_load shell_parse)
fi

log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    echo "fuzzing $target for ${seconds} s"
    # libFuzzer reports every new input; keep that in a log and show its end, or all of it
    # after a crash.
    log="$log_dir/$target.log"
    if ! cargo fuzz run --sanitizer none "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        cat "$log" >&2
        echo "fuzz: $target failed; its input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || tail -n 3 "$log"
done
