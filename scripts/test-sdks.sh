#!/usr/bin/env bash
# Python and TypeScript SDKs with their framework adapters, tested from the packaged artefacts:
# builds sdks/python (python -m build) and sdks/typescript (npm pack), installs each artefact into
# a fresh venv / a fresh npm project together with the frameworks pinned exactly (PyPI:
# sdks/python/constraints-test.txt; npm: sdks/typescript/package-lock.json and the versions below),
# type-checks (mypy --strict on the installed package; tsc --noEmit on the sources and on a
# consumer of the installed package), runs the tests against the real daemon (GATEHOUSE_BIN, a
# built debug `gatehouse`), then the quick benchmark of each SDK's check() overhead.
# Installs hit the pip and npm caches: fast when they are warm.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export GATEHOUSE_BIN="${GATEHOUSE_BIN:-$ROOT/target/debug/gatehouse}"
[[ -x "$GATEHOUSE_BIN" ]] || { echo "test-sdks: GATEHOUSE_BIN=$GATEHOUSE_BIN is not an executable (cargo build -p gatehouse)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "test-sdks: python3 (3.10 or newer) is needed" >&2; exit 1; }
command -v npm >/dev/null || { echo "test-sdks: npm (Node.js 20 or newer) is needed" >&2; exit 1; }
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "test-sdks: Python 3.10 or newer is needed" >&2; exit 1; }

# The framework versions the TypeScript tests install next to the packed SDK (the same as its
# devDependencies in sdks/typescript/package.json).
TS_FRAMEWORKS=(
  "@openai/agents@0.20.0" "ai@7.0.173" "langchain@1.5.14" "@langchain/core@1.4.0"
  "@langchain/langgraph@1.7.3" "zod@4.6.7" "@modelcontextprotocol/server@2.4.0"
  "typescript@5.9.3" "@types/node@20.19.43"
)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-sdks.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
started=$SECONDS
status=0
section() { echo "== $* (at $((SECONDS - started)) s)"; }

section "Python SDK: build, install from the wheel into a fresh venv"
python3 -m venv "$WORK/venv"
PY="$WORK/venv/bin/python"
"$PY" -m pip install --quiet --disable-pip-version-check -c "$ROOT/sdks/python/constraints-test.txt" build
# Built from a copy, so setuptools' build/ and egg-info stay out of the source tree.
mkdir -p "$WORK/python-src"
cp -r "$ROOT/sdks/python/pyproject.toml" "$ROOT/sdks/python/README.md" "$ROOT/sdks/python/src" "$WORK/python-src/"
"$PY" -m build --wheel --sdist --outdir "$WORK/dist" "$WORK/python-src" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
"$PY" -m pip install --quiet --disable-pip-version-check -c "$ROOT/sdks/python/constraints-test.txt" \
  "$WORK"/dist/gatehouse-*.whl openai-agents langchain langgraph mcp mypy pytest
# The tests must import the installed package, not the source tree.
(cd "$WORK" && "$PY" -c 'import gatehouse, sys; p = gatehouse.__file__; print("gatehouse from", p); sys.exit("site-packages" not in p)')

section "Python SDK: mypy --strict on the installed package"
# The cache (outside the temporary tree) keeps the frameworks' analysis across runs.
(cd "$WORK" && "$WORK/venv/bin/mypy" --strict --python-version 3.10 --cache-dir "${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse-sdk-mypy" -p gatehouse) || status=1

section "Python SDK: tests (client, OpenAI Agents SDK, LangChain/LangGraph) against the real daemon"
(cd "$WORK" && "$PY" -m pytest -q -p no:cacheprovider --rootdir "$ROOT/sdks/python" "$ROOT/sdks/python/tests") || status=1

section "TypeScript SDK: npm ci, tsc --noEmit, npm pack"
TS="$ROOT/sdks/typescript"
if ! cmp -s "$TS/package-lock.json" "$TS/node_modules/.package-lock.json" 2>/dev/null; then
  (cd "$TS" && npm ci --no-audit --no-fund --loglevel=error --ignore-scripts)
fi
(cd "$TS" && npx --no-install tsc -p tsconfig.json --noEmit)
(cd "$TS" && npm pack --silent --pack-destination "$WORK" >/dev/null)
TARBALL="$(ls "$WORK"/gatehouse-sdk-*.tgz)"

section "TypeScript SDK: install the artefact into a fresh project"
APP="$WORK/app"
mkdir -p "$APP"
cp -r "$TS/test" "$TS/bench" "$APP/"
printf '{"name":"gatehouse-sdk-tests","private":true,"type":"module"}\n' >"$APP/package.json"
(cd "$APP" && npm install --no-audit --no-fund --loglevel=error --save-exact "$TARBALL" "${TS_FRAMEWORKS[@]}")
(cd "$APP" && npx --no-install tsc -p test/tsconfig.json) || status=1

section "TypeScript SDK: tests (client, OpenAI Agents SDK, LangChain.js, Vercel AI SDK) against the real daemon"
(cd "$APP" && node --test --test-concurrency=1 test/*.test.mjs) || status=1

section "benchmarks (quick): each SDK's check() over a raw HTTP round trip, same run"
(cd "$WORK" && "$PY" "$ROOT/sdks/python/bench/bench_check.py" --quick) || status=1
(cd "$APP" && node bench/bench-check.mjs --quick) || status=1

echo "test-sdks: $([ "$status" -eq 0 ] && echo "all passed" || echo "FAILED") in $((SECONDS - started)) s"
exit "$status"
