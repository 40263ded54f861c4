#!/usr/bin/env bash
# The PostgreSQL ledger's tests: starts a throwaway cluster with scripts/pg-cluster.sh (Debian's
# postgresql, pinned, installed when missing; initdb/pg_ctl in a temporary directory, loopback, a
# free port), exports GATEHOUSE_TEST_POSTGRES_URL, runs the ledger conformance suite on both
# backends and the multi-replica tests, and stops the cluster on exit.
set -euo pipefail

cd "$(dirname "$0")/.."

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-pg.XXXXXX")
rmdir "$WORK"
trap 'scripts/pg-cluster.sh stop "$WORK"' EXIT
export GATEHOUSE_TEST_POSTGRES_URL
GATEHOUSE_TEST_POSTGRES_URL=$(scripts/pg-cluster.sh start "$WORK")
echo "test-postgres: PostgreSQL at $GATEHOUSE_TEST_POSTGRES_URL"

START=$(date +%s)
cargo test -q -p gatehouse-ledger --test ledger conformance -- --test-threads 4
if [[ -f crates/gatehouse/tests/replicas.rs ]]; then
  cargo test -q -p gatehouse --test replicas -- --test-threads 2
fi
echo "test-postgres: all passed in $(( $(date +%s) - START ))s"
