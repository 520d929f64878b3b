#!/usr/bin/env bash
# Run a command with the local Kafka broker and PostgreSQL up; stop afterwards whatever this
# script started, even when the command fails. Services already running are left running.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

started=()
cleanup() {
  local service
  for service in "${started[@]}"; do "$here/$service.sh" down || true; done
}
trap cleanup EXIT INT TERM

if ! "$here/kafka.sh" status >/dev/null 2>&1; then
  "$here/kafka.sh" up || exit 1
  started+=(kafka)
fi
if ! "$here/postgres.sh" status >/dev/null 2>&1; then
  "$here/postgres.sh" up || exit 1
  started+=(postgres)
fi
export TRIGGERLINE_TEST_BOOTSTRAP="${TRIGGERLINE_TEST_BOOTSTRAP:-127.0.0.1:19092}"
export TRIGGERLINE_TEST_POSTGRES_URL="${TRIGGERLINE_TEST_POSTGRES_URL:-$("$here/postgres.sh" url)}"
"$@"
