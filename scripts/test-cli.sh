#!/usr/bin/env bash
# `gatehouse watch` driven in tmux (send-keys, capture-pane) against a real daemon: installs
# tmux (Debian, pinned) when it is missing, then runs the CLI output tests, the tmux one
# included (under plain `cargo test` without tmux that test is skipped, with a message).
# Idempotent and fast when tmux is installed. GATEHOUSE_BIN is accepted for symmetry with the
# other scripts; the tests use the binary cargo builds for them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TMUX_VERSION="3.3a-3"

if ! command -v tmux >/dev/null; then
  echo "== CLI: installing tmux $TMUX_VERSION (apt)"
  SUDO=""
  [[ "$(id -u)" == 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "tmux=$TMUX_VERSION"; then
    # Another Debian release carries another build of tmux; the test needs only send-keys and
    # capture-pane, which every tmux >= 2 has.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq tmux
  fi
fi
tmux -V

cd "$ROOT"
echo "== CLI: listings, --json, check messages, id prefixes, daemon.url, gatehouse watch in tmux"
# tmux is installed (checked above), so the tmux test runs rather than skipping.
cargo test -q -p gatehouse --test cli_output
echo "test-cli: all passed"
