#!/usr/bin/env bash
# Local message brokers for event-gateway's tests — no Docker needed.
#
#   scripts/brokers.sh up            ensure RabbitMQ, NATS JetStream, Kafka and PostgreSQL all answer
#   scripts/brokers.sh status        one line per broker: reachable or not (exit 1 if any is not)
#   scripts/brokers.sh down          stop the Kafka this script started (RabbitMQ/NATS untouched)
#   scripts/brokers.sh start-kafka   only the Kafka part of `up`
#   scripts/brokers.sh stop-kafka [--kill]
#                                    = down; --kill sends SIGKILL at once (simulates a crash)
#   scripts/brokers.sh restart-kafka [--kill]
#                                    stop-kafka then start-kafka (broker-restart tests)
#   scripts/brokers.sh reset         stop our Kafka and delete its data (topics, offsets)
#   scripts/brokers.sh tool CLASS [ARGS]
#                                    run a Kafka CLI tool from the cached jars, e.g.
#                                    tool TopicCommand --bootstrap-server 127.0.0.1:9092 --list
#                                    tool consumer.group.ConsumerGroupCommand --bootstrap-server 127.0.0.1:9092 --list
#
# Addresses: RabbitMQ 127.0.0.1:5672, NATS 127.0.0.1:4222, Kafka 127.0.0.1:9092
# (its KRaft controller listens on 127.0.0.1:9093), PostgreSQL 127.0.0.1:5432 (the
# store tests create and drop a database per test on it).
#
# Whatever already listens on a port is reused. RabbitMQ, NATS and PostgreSQL come
# with the machine and are only (re)started with the machine's own commands if down.
# Kafka is an Apache Kafka broker run straight from Maven Central jars:
# scripts/kafka/pom.xml is resolved once into a cache outside the git clone.
#
# Kafka's data survives `down`/`up`: the KRaft store is formatted only when it
# has never been formatted, so a restart keeps topics and committed offsets,
# like a real broker restart. `reset` wipes it.
#
# Environment:
#   EVENT_GATEWAY_CACHE   cache folder (default ~/.cache/event-gateway); holds
#                         kafka-<version>/{libs,data,server.properties},
#                         kafka.pid and kafka.log
#   KAFKA_VERSION         org.apache.kafka:kafka_2.13 version (default 4.4.0)
#   LOG4J_VERSION         log4j2 version for the broker's logging (default 2.26.1)
#   KAFKA_START_TIMEOUT   seconds to wait for Kafka to serve metadata (default 90)
#   KAFKA_STOP_TIMEOUT    seconds between SIGTERM and SIGKILL (default 30)
#   KAFKA_HEAP_OPTS       default "-Xmx512m -Xms256m"
#   KAFKA_JVM_PERFORMANCE_OPTS  GC/JIT options (default: G1, C1-only JIT)
#   JAVA_HOME             java to run Kafka with (Kafka 4.x needs Java 17+)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
KAFKA_ASSETS="$SCRIPT_DIR/kafka"

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
LOG4J_VERSION="${LOG4J_VERSION:-2.26.1}"
CACHE_DIR="${EVENT_GATEWAY_CACHE:-$HOME/.cache/event-gateway}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
# G1 with a short pause goal as in Kafka's own kafka-run-class.sh, plus C1-only
# JIT: on 2 cores it cuts the broker's start from ~8 to ~5 CPU-seconds (about
# 1 s of wall time per restart) at some cost in peak throughput, which tests
# don't need. Set KAFKA_JVM_PERFORMANCE_OPTS to override.
KAFKA_JVM_PERFORMANCE_OPTS="${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:TieredStopAtLevel=1}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

KAFKA_HOME="$CACHE_DIR/kafka-$KAFKA_VERSION"   # per version: jars and KRaft data differ
KAFKA_LIBS="$KAFKA_HOME/libs"
KAFKA_DATA="$KAFKA_HOME/data"
KAFKA_CONFIG="$KAFKA_HOME/server.properties"
# Not per version, so that `down` finds the broker whatever KAFKA_VERSION says.
KAFKA_PID_FILE="$CACHE_DIR/kafka.pid"
KAFKA_LOG="$CACHE_DIR/kafka.log"

RABBITMQ_PORT=5672
NATS_PORT=4222
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093   # fixed in scripts/kafka/server.properties.template
POSTGRES_PORT=5432
HOST=127.0.0.1

log() { printf '%s\n' "$*"; }
die() { printf 'brokers.sh: %s\n' "$*" >&2; exit 1; }

# True when something accepts TCP connections on $HOST:$1.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# wait_port PORT SECONDS
wait_port() {
  local deadline=$((SECONDS + $2))
  until port_open "$1"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

# wait_port_closed PORT SECONDS
wait_port_closed() {
  local deadline=$((SECONDS + $2))
  while port_open "$1"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# ---------------------------------------------------------------- RabbitMQ

ensure_rabbitmq() {
  if port_open "$RABBITMQ_PORT"; then
    log "rabbitmq: reusing what listens on $HOST:$RABBITMQ_PORT"
    return
  fi
  command -v rabbitmq-server >/dev/null || die "rabbitmq: nothing on $HOST:$RABBITMQ_PORT and no rabbitmq-server command"
  log "rabbitmq: not listening on $HOST:$RABBITMQ_PORT, starting it (rabbitmq-server -detached)"
  rabbitmq-server -detached
  # await_startup waits for the node to boot fully (plugins and listeners),
  # which the open port alone does not prove; the port poll is the fallback
  # when rabbitmqctl cannot reach the node (e.g. cookie trouble).
  if command -v rabbitmqctl >/dev/null; then
    timeout 120 rabbitmqctl await_startup --timeout 110 >/dev/null 2>&1 || true
  fi
  wait_port "$RABBITMQ_PORT" 60 || die "rabbitmq: still not listening on $HOST:$RABBITMQ_PORT after start"
  log "rabbitmq: started, listening on $HOST:$RABBITMQ_PORT"
}

# -------------------------------------------------------------------- NATS

# Prints the INFO line a NATS server sends to every new connection.
nats_info() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$NATS_PORT; head -n 1 <&3" 2>/dev/null
}

nats_jetstream_note() {
  local info
  info="$(nats_info || true)"
  if [[ "$info" == *'"jetstream":true'* ]]; then echo "jetstream on"; else echo "WARNING: jetstream not enabled"; fi
}

ensure_nats() {
  if port_open "$NATS_PORT"; then
    log "nats: reusing what listens on $HOST:$NATS_PORT ($(nats_jetstream_note))"
    return
  fi
  [[ -x /usr/sbin/nats-server ]] || die "nats: nothing on $HOST:$NATS_PORT and no /usr/sbin/nats-server"
  log "nats: not listening on $HOST:$NATS_PORT, starting /usr/sbin/nats-server with JetStream"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a "$HOST" -p "$NATS_PORT" -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_port "$NATS_PORT" 30 || die "nats: still not listening on $HOST:$NATS_PORT (see /var/log/nats-server.log)"
  log "nats: started, listening on $HOST:$NATS_PORT ($(nats_jetstream_note))"
}

# ------------------------------------------------------------------- Kafka

# Prints the pid of the Kafka broker this script started, if it is alive.
# Checks the command line too, so a recycled pid is never mistaken for ours.
kafka_pid() {
  kafka_launched_alive || return 1
  local pid cmdline
  pid="$(<"$KAFKA_PID_FILE")"
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *" kafka.Kafka "* ]] || return 1
  echo "$pid"
}

# True while the process in the pid file lives. Unlike kafka_pid it does not
# look for kafka.Kafka in its command line: right after kafka_launch the child
# may not have exec'd into the JVM yet (on a busy machine that took long enough
# to be reported as "exited during startup" while the broker was starting).
kafka_launched_alive() {
  [[ -f "$KAFKA_PID_FILE" ]] || return 1
  local pid
  pid="$(<"$KAFKA_PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && pid_alive "$pid"
}

# True while process $1 exists and is not a finished zombie. A dead broker
# can stay an unreaped zombie for a while (it was re-parented), and kill -0
# still answers for it. But a zombie main thread alone is not enough: right
# after SIGKILL the JVM's other threads are still exiting and its sockets
# are still open, so count it dead only when no other thread is left.
pid_alive() {
  local stat tasks
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z ]] && return 0
  tasks=("/proc/$1/task/"*)
  ((${#tasks[@]} > 1))
}

# Kafka version of a running broker of ours, read from its classpath.
kafka_pid_version() {
  tr '\0' '\n' <"/proc/$1/cmdline" | sed -n 's|.*/kafka-\([^/]*\)/libs/\*$|\1|p' | head -n 1
}

# On a failed start: the errors first (the log's tail is often just metadata
# replay), then the tail itself.
kafka_tail_log() {
  [[ -f "$KAFKA_LOG" ]] || return 0
  {
    echo "---- errors in $KAFKA_LOG ----"
    grep -E '^\[[^]]*\] (ERROR|FATAL) |^([a-z]+\.)+[A-Za-z]*(Exception|Error)\b|^Caused by: ' "$KAFKA_LOG" | head -n 20 | cut -c1-400 || true
    echo "---- last 40 lines of $KAFKA_LOG ----"
    tail -n 40 "$KAFKA_LOG" | cut -c1-400
    echo "----"
  } >&2
}

# Put the broker's jars into $KAFKA_LIBS, unless a previous run already did.
kafka_resolve() {
  local pom="$KAFKA_ASSETS/pom.xml" marker="$KAFKA_LIBS/.resolved" want tmp
  # The marker records what was resolved; a changed pom or version re-resolves.
  want="kafka=$KAFKA_VERSION log4j=$LOG4J_VERSION pom=$(sha256sum "$pom" | cut -c1-16)"
  if [[ -f "$marker" && "$(<"$marker")" == "$want" ]]; then
    log "kafka: jars cached in $KAFKA_LIBS"
    return
  fi
  command -v mvn >/dev/null || die "kafka: mvn is needed to fetch Kafka's jars"
  log "kafka: resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION into $KAFKA_LIBS (one-off)"
  mkdir -p "$KAFKA_HOME"
  # Copy into a scratch folder and rename it at the end, so an interrupted
  # download never leaves a half-filled libs/ that looks complete.
  tmp="$KAFKA_HOME/libs.partial"
  rm -rf "$tmp"
  # cd: keep anything Maven might write out of the git clone. The sed drops
  # the colour-reset codes Maven 3.8 prints even with -B -q (pipefail keeps
  # mvn's exit status).
  (cd "$KAFKA_HOME" && mvn -B -q -f "$pom" \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" \
      -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$LOG4J_VERSION" 2>&1 \
    | sed 's/\x1b\[[0-9;]*m//g' >&2) \
    || die "kafka: mvn could not resolve Kafka $KAFKA_VERSION (see its output above)"
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "kafka: kafka_2.13-$KAFKA_VERSION.jar missing after resolve"
  echo "$want" >"$tmp/.resolved"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  log "kafka: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars in $KAFKA_LIBS"
}

# Run a Kafka command-line tool (main class + args) from the cached jars.
# Short-lived JVM: small heap, C1 only, which starts faster.
kafka_tool() {
  "$JAVA" -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$KAFKA_ASSETS/log4j2-tools.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
}

# Write server.properties and format the KRaft store if it never was.
kafka_prepare_storage() {
  mkdir -p "$KAFKA_DATA"
  sed "s|@DATA_DIR@|$KAFKA_DATA|g" "$KAFKA_ASSETS/server.properties.template" >"$KAFKA_CONFIG"
  if [[ -f "$KAFKA_DATA/meta.properties" ]]; then
    log "kafka: reusing formatted store $KAFKA_DATA (topics and offsets kept; 'reset' wipes them)"
    return
  fi
  local cluster_id
  cluster_id="$(kafka_tool kafka.tools.StorageTool random-uuid)" || die "kafka: StorageTool random-uuid failed"
  # Static quorum (controller.quorum.voters), so no --standalone here.
  kafka_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_CONFIG" >/dev/null \
    || die "kafka: StorageTool format failed"
  log "kafka: formatted new KRaft store $KAFKA_DATA (cluster id $cluster_id)"
}

kafka_launch() {
  [[ -f "$KAFKA_LOG" ]] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.prev"
  # - setsid + nohup: the broker outlives this script and is not hit by a
  #   Ctrl-C or SIGHUP aimed at the caller's process group. Without job control
  #   the child is no group leader, so setsid and nohup exec in place and $!
  #   is the JVM's own pid.
  # - 9>&-: don't hand our lock file descriptor to the broker.
  # - No JMX options: the JVM opens no port besides Kafka's two listeners.
  # shellcheck disable=SC2086  # the *_OPTS are lists of options
  setsid nohup "$JAVA" $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_ASSETS/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONFIG" \
    >"$KAFKA_LOG" 2>&1 </dev/null 9>&- &
  local pid=$!
  disown "$pid"   # no "Killed" job notice if we have to kill it ourselves
  echo "$pid" >"$KAFKA_PID_FILE"
  log "kafka: started Kafka $KAFKA_VERSION, pid $pid, log $KAFKA_LOG"
}

# --- Readiness, spoken in Kafka's wire protocol from bash ---------------
# A JVM-based probe (kafka-topics) costs ~2 s of CPU per try on 2 cores; these
# raw requests cost milliseconds. Only old, non-flexible request versions are
# used (fixed layouts, still served by Kafka 4.x and the same ones kafkajs
# 2.2.4 sends), each with correlation id 1 and a null client id.

# kafka_request API_KEY API_VERSION BODY_HEX N: send one request and print, as
# hex, the first N bytes of the response body (after size and correlation id).
kafka_request() {
  local req frame reply n=$4
  req="$(printf '%04x%04x' "$1" "$2")00000001ffff$3"
  frame="$(printf '%08x' $((${#req} / 2)))$req"
  # shellcheck disable=SC2016,SC2001  # $1..$4 belong to the inner shell
  reply="$(timeout 3 bash -c '
      exec 3<>"/dev/tcp/$1/$2"
      printf "$3" >&3
      head -c "$4" <&3 | od -An -tx1' _ "$HOST" "$KAFKA_PORT" \
      "$(sed 's/../\\x&/g' <<<"$frame")" "$((8 + n))" 2>/dev/null)" || return 1
  reply="${reply//[[:space:]]/}"
  [[ ${#reply} -eq $((2 * (8 + n))) && "${reply:8:8}" == 00000001 ]] || return 1
  echo "${reply:16}"
}

# ApiVersions v0 -> error code 0. Kafka opens its client listener for requests
# only after the broker has caught up with the metadata log and been unfenced.
kafka_api_versions_ok() {
  [[ "$(kafka_request 18 0 '' 2)" == 0000 ]]
}

# Metadata v4 for no topics (allow_auto_topic_creation=false) -> at least one
# broker listed: the broker really serves metadata.
kafka_metadata_ok() {
  local r
  r="$(kafka_request 3 4 0000000000 8)" || return 1   # throttle ms, broker count
  [[ "${r:8:8}" != 00000000 ]]
}

# FindCoordinator v2, key type $1 (0 group, 1 transaction) -> error code 0.
# On a fresh store this creates __consumer_offsets / __transaction_state; after
# a restart it waits until their partitions are loaded again.
kafka_coordinator_ok() {
  local key=brokers-sh-warmup r
  r="$(kafka_request 10 2 "$(printf '%04x' ${#key})$(printf '%s' "$key" | od -An -tx1 | tr -d ' \n')0$1" 6)" \
    || return 1                                       # throttle ms, error code
  [[ "${r:8:4}" == 0000 ]]
}

# InitProducerId v1 without a transactional id -> error code 0. A freshly
# started broker first fetches a block of producer ids from the controller and
# answers COORDINATOR_LOAD_IN_PROGRESS until then.
kafka_producer_id_ok() {
  local r
  r="$(kafka_request 22 1 ffff0000ea60 6)" || return 1  # throttle ms, error code
  [[ "${r:8:4}" == 0000 ]]
}

# Wait until clients can do real work, not merely until the port opens. Besides
# answering and serving metadata, the group and transaction coordinators and
# producer-id allocation must be ready: otherwise the first consumer group or
# idempotent producer of a test meets retriable errors (kafkajs retries, but
# logs them at ERROR level and loses seconds).
kafka_wait_ready() {
  local deadline=$((SECONDS + KAFKA_START_TIMEOUT)) step
  while :; do
    if ! kafka_api_versions_ok; then step="no answer to ApiVersions"
    elif ! kafka_metadata_ok; then step="no metadata"
    elif ! kafka_coordinator_ok 0; then step="group coordinator not available"
    elif ! kafka_coordinator_ok 1; then step="transaction coordinator not available"
    elif ! kafka_producer_id_ok; then step="no producer id"
    else return 0
    fi
    kafka_launched_alive || { kafka_tail_log; die "kafka: broker exited during startup"; }
    if ((SECONDS >= deadline)); then
      kafka_tail_log
      # Don't leave a half-started broker behind for the next `up` to adopt.
      stop_kafka --kill >&2 || true
      die "kafka: not ready on $HOST:$KAFKA_PORT after ${KAFKA_START_TIMEOUT}s ($step)"
    fi
    sleep 0.25
  done
}

start_kafka() {
  local pid
  if port_open "$KAFKA_PORT"; then
    if pid="$(kafka_pid)"; then
      log "kafka: reusing Kafka $(kafka_pid_version "$pid") started by this script (pid $pid) on $HOST:$KAFKA_PORT"
      kafka_wait_ready   # milliseconds when it is ready, as it normally is
    else
      log "kafka: reusing what listens on $HOST:$KAFKA_PORT (not started by this script)"
      kafka_api_versions_ok || log "kafka: WARNING: $HOST:$KAFKA_PORT does not answer Kafka ApiVersions requests (yet?)"
    fi
    return
  fi
  if pid="$(kafka_pid)"; then
    # Ours but not listening yet: still starting (e.g. a parallel `up`).
    log "kafka: pid $pid is still starting, waiting for it"
  else
    rm -f "$KAFKA_PID_FILE"
    port_open "$KAFKA_CONTROLLER_PORT" \
      && die "kafka: $HOST:$KAFKA_CONTROLLER_PORT (KRaft controller) is taken by another process"
    # Kafka 3.x logs through log4j 1 (reload4j) and would need another pom and
    # logging config; only 4.x is wired up here.
    [[ "$KAFKA_VERSION" =~ ^[4-9]\. ]] || die "kafka: KAFKA_VERSION=$KAFKA_VERSION unsupported (this script runs Kafka 4.x)"
    kafka_resolve
    kafka_prepare_storage
    kafka_launch
  fi
  kafka_wait_ready
  log "kafka: ready on $HOST:$KAFKA_PORT (${SECONDS}s since brokers.sh started)"
}

# stop_kafka [--kill]
stop_kafka() {
  local pid signal=TERM deadline
  [[ "${1:-}" == "--kill" ]] && signal=KILL
  if ! pid="$(kafka_pid)"; then
    rm -f "$KAFKA_PID_FILE"
    if port_open "$KAFKA_PORT"; then
      log "kafka: what listens on $HOST:$KAFKA_PORT was not started by this script; left alone"
    else
      log "kafka: not running"
    fi
    return
  fi
  log "kafka: stopping pid $pid (SIG$signal)"
  kill "-$signal" "$pid" 2>/dev/null || true
  # A single-node KRaft broker does a controlled shutdown against its own
  # controller; give it KAFKA_STOP_TIMEOUT seconds, then SIGKILL.
  deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      log "kafka: pid $pid still alive after ${KAFKA_STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 10))
      while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
      break
    fi
    sleep 0.2
  done
  pid_alive "$pid" && die "kafka: pid $pid survived SIGKILL"
  rm -f "$KAFKA_PID_FILE"
  # The next start must not find the old listeners still open.
  if ! { wait_port_closed "$KAFKA_PORT" 10 && wait_port_closed "$KAFKA_CONTROLLER_PORT" 10; }; then
    die "kafka: pid $pid is gone but $HOST:$KAFKA_PORT/$KAFKA_CONTROLLER_PORT still accept connections"
  fi
  log "kafka: stopped"
}

reset_kafka() {
  stop_kafka
  if port_open "$KAFKA_PORT"; then
    die "kafka: something not started by this script still listens on $HOST:$KAFKA_PORT; not wiping"
  fi
  rm -rf "$KAFKA_DATA"
  log "kafka: deleted $KAFKA_DATA; the next 'up' formats a fresh store"
}

# -------------------------------------------------------------- PostgreSQL

ensure_postgres() {
  if port_open "$POSTGRES_PORT"; then
    log "postgres: reusing what listens on $HOST:$POSTGRES_PORT"
    return
  fi
  command -v pg_ctlcluster >/dev/null || die "postgres: nothing on $HOST:$POSTGRES_PORT and no pg_ctlcluster"
  log "postgres: not listening on $HOST:$POSTGRES_PORT, starting the machine's clusters (pg_ctlcluster)"
  local version cluster
  while read -r version cluster _; do
    pg_ctlcluster "$version" "$cluster" start || true
  done < <(pg_lsclusters --no-header)
  wait_port "$POSTGRES_PORT" 60 || die "postgres: still not listening on $HOST:$POSTGRES_PORT after start"
  log "postgres: started, listening on $HOST:$POSTGRES_PORT"
}

# ------------------------------------------------------------------ status

status() {
  local bad=0 pid
  if port_open "$RABBITMQ_PORT"; then
    log "rabbitmq  $HOST:$RABBITMQ_PORT  reachable"
  else
    log "rabbitmq  $HOST:$RABBITMQ_PORT  NOT reachable"; bad=1
  fi
  if port_open "$NATS_PORT"; then
    log "nats      $HOST:$NATS_PORT  reachable ($(nats_jetstream_note))"
  else
    log "nats      $HOST:$NATS_PORT  NOT reachable"; bad=1
  fi
  if port_open "$POSTGRES_PORT"; then
    log "postgres  $HOST:$POSTGRES_PORT  reachable"
  else
    log "postgres  $HOST:$POSTGRES_PORT  NOT reachable"; bad=1
  fi
  if kafka_api_versions_ok; then
    if pid="$(kafka_pid)"; then
      log "kafka     $HOST:$KAFKA_PORT  reachable (Kafka $(kafka_pid_version "$pid") started by brokers.sh, pid $pid, log $KAFKA_LOG)"
    else
      log "kafka     $HOST:$KAFKA_PORT  reachable (not started by brokers.sh)"
    fi
  elif port_open "$KAFKA_PORT"; then
    log "kafka     $HOST:$KAFKA_PORT  NOT reachable (port open, but no answer to ApiVersions)"; bad=1
  else
    log "kafka     $HOST:$KAFKA_PORT  NOT reachable"; bad=1
  fi
  return "$bad"
}

# -------------------------------------------------------------------- main

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

# The cache must live outside the git clone: it is big, and CI clones afresh.
check_cache_dir() {
  mkdir -p "$CACHE_DIR"
  local cache_real
  cache_real="$(cd "$CACHE_DIR" && pwd -P)"
  case "$cache_real/" in
    "$(cd "$REPO_ROOT" && pwd -P)/"*) die "EVENT_GATEWAY_CACHE ($cache_real) must be outside the git clone" ;;
  esac
}

# Serialise concurrent invocations (parallel test workers calling `up`).
take_lock() {
  exec 9>"$CACHE_DIR/brokers.lock"
  flock -w 300 9 || die "another brokers.sh held $CACHE_DIR/brokers.lock for 5 minutes"
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    up)
      check_cache_dir; take_lock
      ensure_rabbitmq; ensure_nats; ensure_postgres; start_kafka ;;
    start-kafka)
      check_cache_dir; take_lock; start_kafka ;;
    down | stop-kafka)
      check_cache_dir; take_lock; stop_kafka "$@" ;;
    restart-kafka)
      check_cache_dir; take_lock; stop_kafka "$@"; start_kafka ;;
    reset)
      check_cache_dir; take_lock; reset_kafka ;;
    status)
      status ;;
    tool)
      [[ $# -gt 0 ]] || die "usage: brokers.sh tool <class in org.apache.kafka.tools> [args...]"
      local class="$1"; shift
      [[ "$class" == org.* || "$class" == kafka.* ]] || class="org.apache.kafka.tools.$class"
      [[ -f "$KAFKA_LIBS/.resolved" ]] || die "kafka: no jars in $KAFKA_LIBS yet; run 'up' first"
      kafka_tool "$class" "$@" ;;
    -h | --help | help)
      usage ;;
    *)
      usage >&2; exit 2 ;;
  esac
}

main "$@"
