#!/usr/bin/env bash
# Installs what the browser end-to-end tests, the CLI's tmux test and the fuzz smoke run need on a
# fresh Debian machine: cargo-fuzz, Debian's Chromium (Playwright's own browser download is not
# used), tmux, and the pinned npm packages of tests/e2e (and bench/peer, if present).
# Idempotent and quick when everything is already there.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# One `apt-get update` for every Debian package missing. tmux drives `gatehouse watch` in the CLI
# tests (send-keys, capture-pane: any tmux >= 2 has them); the pinned build is Debian 12's.
TMUX_VERSION="3.3a-3"
apt_packages=()
if [ ! -x /usr/bin/chromium ]; then apt_packages+=(chromium chromium-driver); fi
if ! command -v tmux >/dev/null 2>&1; then
    if apt-cache show "tmux=$TMUX_VERSION" >/dev/null 2>&1; then
        apt_packages+=("tmux=$TMUX_VERSION")
    else
        apt_packages+=(tmux)
    fi
fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${apt_packages[@]}"
fi

# Debian's PostgreSQL (pinned) for the team-mode tests; scripts/test.sh starts a throwaway cluster.
"$repo_root/scripts/pg-cluster.sh" install

# cargo-fuzz for the fuzz smoke run (scripts/fuzz.sh); building it takes about 30 s on 2 cores.
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "install-test-deps: npm not found; install Node.js 20 or newer" >&2
    exit 1
fi

# `npm ci` wipes and reinstalls node_modules; skip it when the installed tree
# already matches the lock file (npm writes node_modules/.package-lock.json).
npm_ci() {
    local dir="$1"
    [ -f "$dir/package-lock.json" ] || return 0
    if [ -f "$dir/node_modules/.package-lock.json" ] \
        && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
        return 0
    fi
    (cd "$dir" && npm ci --no-audit --no-fund)
}

npm_ci "$repo_root/tests/e2e"
if [ -d "$repo_root/bench/peer" ]; then
    npm_ci "$repo_root/bench/peer"
fi
