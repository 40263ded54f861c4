#!/usr/bin/env bash
# Runs Gatehouse's end-to-end tests with the real agent CLIs (Claude Code, Codex CLI, Gemini CLI):
# installs the versions pinned in tests/agents/package-lock.json with `npm ci` (skipped when the
# installed tree already matches the lock file), checks each CLI starts and reports its pinned
# version, then runs tests/agents/*.test.mjs with node --test. The model is a fake API on loopback
# (tests/agents/support/fake-model-api.mjs); see tests/agents/README.md.
#
# Usage: GATEHOUSE_BIN=$PWD/target/debug/gatehouse scripts/test-agents.sh [test files…]
set -euo pipefail
files=("$@")
cd "$(dirname "${BASH_SOURCE[0]}")/../tests/agents"

: "${GATEHOUSE_BIN:?set GATEHOUSE_BIN to a built debug gatehouse binary (cargo build -p gatehouse)}"
if [ ! -x "$GATEHOUSE_BIN" ]; then
    echo "GATEHOUSE_BIN=$GATEHOUSE_BIN is not an executable file" >&2
    exit 1
fi
GATEHOUSE_BIN="$(cd "$(dirname "$GATEHOUSE_BIN")" && pwd)/$(basename "$GATEHOUSE_BIN")"
export GATEHOUSE_BIN

lock_sha="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp=node_modules/.gatehouse-lock-sha256
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sha" ]; then
    echo "== installing the pinned agent CLIs (npm ci)"
    npm ci --no-audit --no-fund
    echo "$lock_sha" >"$stamp"
fi

pinned() { node -p "require('./package.json').devDependencies['$1']"; }
version_of() { HOME="$(mktemp -d)" timeout 60 "node_modules/.bin/$1" --version 2>/dev/null | head -n1 || true; }

# Claude Code's postinstall copies its native binary over a placeholder; npm may have skipped it.
if ! version_of claude | grep -qF "$(pinned @anthropic-ai/claude-code)"; then
    node node_modules/@anthropic-ai/claude-code/install.cjs
fi
for cli in "claude @anthropic-ai/claude-code" "codex @openai/codex" "gemini @google/gemini-cli"; do
    read -r bin package <<<"$cli"
    got="$(version_of "$bin")"
    if ! grep -qF "$(pinned "$package")" <<<"$got"; then
        echo "$bin: expected version $(pinned "$package"), got '${got}'" >&2
        exit 1
    fi
    echo "$bin: $got"
done

if [ ${#files[@]} -eq 0 ]; then
    files=(*.test.mjs)
fi
echo "== agent CLI end-to-end tests: ${files[*]}"
# The three hosts' files run in parallel (they share no state); a whole run stays under ~8 min.
node --test --test-concurrency=3 --test-timeout=600000 "${files[@]}"
echo "== agent CLI end-to-end tests passed"
