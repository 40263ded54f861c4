#!/usr/bin/env bash
# `gatehouse watch` driven in tmux (send-keys, capture-pane) against a real daemon, with the other
# CLI output tests: installs tmux (with the other test dependencies) when it is missing, then runs
# them with GATEHOUSE_REQUIRE_TMUX=1, so the tmux test fails rather than skips without it.
# scripts/test.sh runs the same test inside `cargo test --workspace`; this is the quick way to run
# only these.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/install-test-deps.sh"
tmux -V

cd "$ROOT"
echo "== CLI: listings, --json, check messages, id prefixes, daemon.url, gatehouse watch in tmux"
GATEHOUSE_REQUIRE_TMUX=1 cargo test -q -p gatehouse --test cli_output
echo "test-cli: all passed"
