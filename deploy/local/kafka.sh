#!/usr/bin/env bash
# Local Apache Kafka (KRaft, one combined broker+controller on loopback), from Maven Central jars.
#   kafka.sh up      fetch the jars if needed, format storage once, start, wait until it answers
#   kafka.sh down    stop the broker started here (and nothing else)
#   kafka.sh status  say whether it runs
# Environment: TRIGGERLINE_KAFKA_HOME (default deploy/local/.kafka) holds jars, data, logs, pid;
# TRIGGERLINE_KAFKA_PORT (default 19092; the controller takes the next port) runs a second broker
# beside the first, e.g. a private one for chaos runs that restart it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
home="${TRIGGERLINE_KAFKA_HOME:-$here/.kafka}"
libs="$home/libs"
data="$home/data"
logs="$home/logs"
pidfile="$home/kafka.pid"
port="${TRIGGERLINE_KAFKA_PORT:-19092}"
cluster_id="dHJpZ2dlcmxpbmUtbG9jYWw"   # fixed: a reformat is never needed for the same data dir

die() { echo "kafka.sh: $*" >&2; exit 1; }

need_tools() {
  command -v java >/dev/null 2>&1 || die "Java is missing: install a Java 17 runtime (apt-get install openjdk-17-jre-headless)."
  local v
  v="$(java -version 2>&1 | awk -F\" '/version/ {print $2}' | cut -d. -f1)"
  [ "${v:-0}" -ge 17 ] || die "Java 17 or newer is needed, found '${v:-unknown}'."
}

fetch_jars() {
  if [ -f "$libs/.complete" ] && [ "$libs/.complete" -nt "$here/pom.xml" ]; then return 0; fi
  command -v mvn >/dev/null 2>&1 || die "Maven is missing: install it (apt-get install maven) so the Kafka jars can be fetched from Maven Central."
  echo "kafka.sh: fetching Apache Kafka jars from Maven Central into $libs"
  rm -rf "$libs"; mkdir -p "$libs"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$libs" >"$home/maven.log" 2>&1 \
    || die "Maven could not fetch the Kafka jars; see $home/maven.log"
  touch "$libs/.complete"
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

java_cmd() {
  java -Xms256m -Xmx1g -XX:+UseG1GC \
       -Dlog4j2.configurationFile="$here/log4j2.properties" -Dkafka.logs.dir="$logs" \
       -cp "$libs/*" "$@"
}

up() {
  need_tools
  mkdir -p "$home" "$data" "$logs"
  if running; then echo "kafka.sh: already running (pid $(cat "$pidfile")) on 127.0.0.1:$port"; return 0; fi
  answers && die "port $port answers but not from a broker started here; stop it first."
  fetch_jars
  local config="$home/server.properties"
  { sed -e "s/19092/$port/g" -e "s/19093/$((port + 1))/g" "$here/server.properties"
    echo "log.dirs=$data"; } >"$config"
  if [ ! -f "$data/meta.properties" ]; then
    java_cmd kafka.tools.StorageTool format -t "$cluster_id" -c "$config" >"$logs/format.log" 2>&1 \
      || die "formatting KRaft storage failed; see $logs/format.log"
  fi
  nohup bash -c 'exec "$@"' _ java -Xms256m -Xmx1g -XX:+UseG1GC \
       -Dlog4j2.configurationFile="$here/log4j2.properties" -Dkafka.logs.dir="$logs" \
       -cp "$libs/*" kafka.Kafka "$config" >"$logs/stdout.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    if ! running; then tail -n 30 "$logs/stdout.log" >&2; die "the broker exited during start-up; see $logs"; fi
    if answers && grep -q "Kafka Server started" "$logs/server.log" 2>/dev/null; then
      echo "kafka.sh: broker up on 127.0.0.1:$port (pid $(cat "$pidfile"))"; return 0
    fi
    sleep 0.5
  done
  die "the broker did not answer on 127.0.0.1:$port within 60 s; see $logs/server.log"
}

down() {
  if ! running; then rm -f "$pidfile"; echo "kafka.sh: not running"; return 0; fi
  local pid; pid="$(cat "$pidfile")"
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && { echo "kafka.sh: broker slow to stop, killing"; kill -9 "$pid"; }
  rm -f "$pidfile"
  echo "kafka.sh: stopped"
}

status() { if running; then echo "running (pid $(cat "$pidfile"))"; else echo "stopped"; exit 3; fi; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  reset) down; rm -rf "$data" "$logs"; echo "kafka.sh: data wiped" ;;
  *) die "usage: kafka.sh up|down|status|reset" ;;
esac
