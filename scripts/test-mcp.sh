#!/usr/bin/env bash
# MCP proxy tests with real parts: installs the pinned npm packages (real MCP servers, the
# TypeScript SDK, the official conformance suite, a Node 22 binary) and the pinned PyPI packages
# (the Python SDK, mcp-server-git) into tests/mcp, then runs the node and Python suites against
# GATEHOUSE_BIN (a built debug `gatehouse`). Idempotent: fast when already installed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MCP="$ROOT/tests/mcp"
export GATEHOUSE_BIN="${GATEHOUSE_BIN:-$ROOT/target/debug/gatehouse}"
[[ -x "$GATEHOUSE_BIN" ]] || { echo "test-mcp: GATEHOUSE_BIN=$GATEHOUSE_BIN is not an executable (cargo build -p gatehouse)" >&2; exit 1; }

cd "$MCP"
# npm: exact versions from package-lock.json; reinstalled only when the lock changed.
if ! cmp -s package-lock.json node_modules/.gatehouse-installed-lock.json 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.gatehouse-installed-lock.json
fi
# The conformance suite needs Node >= 22 (fs.globSync): the `node` package's binary.
node_modules/node/bin/node --version | grep -q '^v22\.' || { echo "test-mcp: node_modules/node/bin/node is not Node 22" >&2; exit 1; }
# Python: a venv with the pinned requirements; reinstalled only when they changed.
if [[ ! -x .venv/bin/python ]] || ! cmp -s requirements.txt .venv/.installed-requirements.txt; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
  cp requirements.txt .venv/.installed-requirements.txt
fi
command -v git >/dev/null || { echo "test-mcp: git is needed by mcp-server-git" >&2; exit 1; }

status=0
echo "== MCP: node suites (TypeScript SDK client, real servers, hostile traffic over stdio and HTTP, HTTP, conformance)"
node --test --test-concurrency=1 ./*.test.mjs || status=1
echo "== MCP: Python SDK client (stdio)"
.venv/bin/python python_client_test.py || status=1
echo "== MCP: Python SDK client and server over HTTP (2025-11-25 and 2026-07-28)"
.venv/bin/python python_http_test.py || status=1
exit "$status"
