#!/usr/bin/env bash
# The PostgreSQL ledger's tests: installs Debian's postgresql (pinned; skipped when present),
# starts a throwaway cluster (initdb/pg_ctl in a temporary directory, loopback, a free port, as
# the `postgres` user when run as root), exports GATEHOUSE_TEST_POSTGRES_URL, runs the ledger
# conformance suite on both backends and the multi-replica tests, and stops the cluster on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
PG_DEB_VERSION="${PG_DEB_VERSION:-15+248+deb12u1}"

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [[ -n "$dir" && -x "$dir/initdb" ]] && echo "$dir"
}

if ! pg_bin >/dev/null; then
  echo "test-postgres: installing postgresql=$PG_DEB_VERSION (apt)"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "postgresql=$PG_DEB_VERSION" >/dev/null
fi
BIN=$(pg_bin)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-pg.XXXXXX")
RUN_AS=()
if [[ $(id -u) -eq 0 ]]; then
  # initdb refuses root: the cluster belongs to the postgres user, in a directory it owns.
  chown postgres "$WORK"
  RUN_AS=(runuser -u postgres --)
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

stop() {
  "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$WORK/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap stop EXIT

"${RUN_AS[@]}" "$BIN/initdb" -D "$WORK/data" -U gatehouse --auth=trust -E UTF8 >"$WORK/initdb.log" 2>&1 \
  || { cat "$WORK/initdb.log"; exit 1; }
"${RUN_AS[@]}" "$BIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w start -o \
  "-k $WORK -p $PORT -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=64MB -c synchronous_commit=on -c fsync=on" \
  >/dev/null || { cat "$WORK/server.log"; exit 1; }

export GATEHOUSE_TEST_POSTGRES_URL="postgres://gatehouse@127.0.0.1:$PORT/postgres"
echo "test-postgres: PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT"

START=$(date +%s)
cargo test -q -p gatehouse-ledger --test ledger conformance -- --test-threads 4
if [[ -f crates/gatehouse/tests/replicas.rs ]]; then
  cargo test -q -p gatehouse --test replicas -- --test-threads 2
fi
echo "test-postgres: all passed in $(( $(date +%s) - START ))s"
