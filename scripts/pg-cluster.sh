#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks: Debian's postgresql (installed, pinned,
# when missing), initdb/pg_ctl in DIR (the `postgres` user owns it when run as root), loopback
# only, a free port, trust auth for the `gatehouse` superuser.
#   scripts/pg-cluster.sh install       installs postgresql if missing
#   scripts/pg-cluster.sh start DIR     starts a cluster in DIR (created; must be empty or absent)
#                                       and prints its admin URL (postgres://gatehouse@127.0.0.1:PORT/postgres)
#   scripts/pg-cluster.sh stop DIR      stops it (immediate) and removes DIR
set -euo pipefail

PG_DEB_VERSION="${PG_DEB_VERSION:-15+248+deb12u1}"

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [[ -n "$dir" && -x "$dir/initdb" ]] && echo "$dir"
}

install() {
  if ! pg_bin >/dev/null; then
    echo "pg-cluster: installing postgresql=$PG_DEB_VERSION (apt)" >&2
    local sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "postgresql=$PG_DEB_VERSION" >/dev/null
  fi
}

run_as() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  local dir=$1
  install
  local bin
  bin=$(pg_bin)
  mkdir -p "$dir"
  # initdb refuses root: the cluster belongs to the postgres user, in a directory it owns.
  [[ $(id -u) -eq 0 ]] && chown postgres "$dir"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  run_as "$bin/initdb" -D "$dir/data" -U gatehouse --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  run_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start -o \
    "-k $dir -p $port -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=64MB -c synchronous_commit=on -c fsync=on" \
    >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  echo "postgres://gatehouse@127.0.0.1:$port/postgres"
}

stop() {
  local dir=$1
  local bin
  bin=$(pg_bin) || true
  if [[ -n "${bin:-}" && -d "$dir/data" ]]; then
    run_as "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  install) install ;;
  start) [[ $# -eq 2 ]] || { echo "usage: $0 start DIR" >&2; exit 2; }; start "$2" ;;
  stop) [[ $# -eq 2 ]] || { echo "usage: $0 stop DIR" >&2; exit 2; }; stop "$2" ;;
  *) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2 ;;
esac
