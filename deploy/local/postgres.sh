#!/usr/bin/env bash
# Local PostgreSQL on loopback for the tests (Debian's server binaries, a throwaway cluster).
#   postgres.sh up | down | status | url
# Data under /tmp (the server runs as the postgres user, which may not reach this checkout);
# port 15432; trust authentication on 127.0.0.1 only.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
home="${TRIGGERLINE_POSTGRES_HOME:-/tmp/triggerline-postgres-$(echo "$here" | cksum | cut -d' ' -f1)}"
port="${TRIGGERLINE_POSTGRES_PORT:-15432}"
data="$home/data"

die() { echo "postgres.sh: $*" >&2; exit 1; }

bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

run_as_owner() {
  # PostgreSQL refuses to run as root: use the postgres account when we are root.
  # (from /, which the postgres account can always enter)
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

up() {
  local bin; bin="$(bindir)" || die "PostgreSQL server binaries are missing: apt-get install postgresql"
  mkdir -p "$home"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "no postgres user; apt-get install postgresql creates it"
    chown postgres "$home"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    run_as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >"$home/initdb.log" 2>&1 \
      || die "initdb failed; see $home/initdb.log"
  fi
  if run_as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    echo "postgres.sh: already running on 127.0.0.1:$port"; return 0
  fi
  run_as_owner "$bin/pg_ctl" -D "$data" -l "$home/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $home -c fsync=off -c max_connections=200" start >/dev/null \
    || die "PostgreSQL did not start; see $home/server.log"
  run_as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='triggerline'" | grep -q 1 \
    || run_as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE triggerline"
  echo "postgres.sh: up on 127.0.0.1:$port ($(url))"
}

down() {
  local bin; bin="$(bindir)" || { echo "postgres.sh: not installed"; return 0; }
  if [ -f "$data/PG_VERSION" ] && run_as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    run_as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    echo "postgres.sh: stopped"
  else
    echo "postgres.sh: not running"
  fi
}

url() { echo "postgresql+psycopg://postgres@127.0.0.1:$port/triggerline"; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) bin="$(bindir)" && run_as_owner "$bin/pg_ctl" -D "$data" status ;;
  url) url ;;
  *) die "usage: postgres.sh up|down|status|url" ;;
esac
