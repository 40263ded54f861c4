#!/usr/bin/env bash
# Confinement's end-to-end chain (tests/sandbox/e2e_chain.py): hook -> daemon -> rewritten
# command -> `gatehouse sandbox run`, with a hostile test written then run by `npm test`.
# The containment tests themselves run in `cargo test -p gatehouse-sandbox` (cargo test
# --workspace). Needs GATEHOUSE_BIN (a debug `gatehouse`), node/npm and python3 (stdlib only);
# installs nothing.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${GATEHOUSE_BIN:?set GATEHOUSE_BIN to a built gatehouse binary}"
for tool in node npm python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "test-sandbox: $tool not found" >&2; exit 1; }
done

if ! "$GATEHOUSE_BIN" sandbox probe; then
    echo "test-sandbox: this kernel cannot confine commands (see above); failing" >&2
    exit 1
fi
GATEHOUSE_BIN="$(cd "$(dirname "$GATEHOUSE_BIN")" && pwd)/$(basename "$GATEHOUSE_BIN")" \
    python3 "$repo_root/tests/sandbox/e2e_chain.py"
echo "test-sandbox: ok"
