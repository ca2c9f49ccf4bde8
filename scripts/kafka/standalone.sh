#!/usr/bin/env bash
# Run a real Apache Kafka 4.x broker, single node in KRaft mode (broker + controller in one JVM), from Maven
# Central artifacts (no tarball, no containers).
#
#   standalone.sh fetch                 resolve kafka_2.13 + deps into ~/.m2 once, cache the classpath
#   standalone.sh start [DIR]           format DIR (fresh: random cluster id) and start in background, wait
#                                       until the broker answers, print the path of DIR/ports.env
#   standalone.sh stop DIR              SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT seconds
#   standalone.sh kill DIR              SIGKILL immediately (crash tests); `start DIR` again reuses data + ports
#   standalone.sh status DIR            exit 0 if running and ready
#   standalone.sh classpath             print the cached classpath (runs fetch if needed)
#
# Environment:
#   KAFKA_VERSION         (default 4.4.0)
#   EDGE_KAFKA_HOME       cache dir (default $HOME/.cache/edge-agent/kafka)
#   KAFKA_PORT            PLAINTEXT listener port (default: free port, or the one stored in DIR/ports.env)
#   KAFKA_CONTROLLER_PORT KRaft controller port (same defaulting)
#   KAFKA_START_TIMEOUT   seconds to wait for readiness (default 120)
#   KAFKA_STOP_TIMEOUT    seconds between SIGTERM and SIGKILL (default 30)
#   KAFKA_HEAP            (default "-Xms128m -Xmx512m")
#   KAFKA_JVM_OPTS        (default "-XX:+UseSerialGC -XX:TieredStopAtLevel=1": quick start-up and few threads on a
#                         small test machine; set it to "" for a throughput benchmark)
#   KAFKA_PARTITIONS      num.partitions for auto-created topics (default 4)
#   KAFKA_LOG_LEVEL       (default info); log goes to DIR/logs/kafka.log
#   KAFKA_SASL_PLAIN_USERS  if set ("user:password user2:password2"): the client listener takes SASL/PLAIN
#                         (SASL_PLAINTEXT) with these users; the broker talks to itself as user `admin`
#   KAFKA_EXTRA_CONF      extra "key=value" lines appended to the broker config
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
CACHE_ROOT="${EDGE_KAFKA_HOME:-$HOME/.cache/edge-agent/kafka}"
CACHE="$CACHE_ROOT/$KAFKA_VERSION"
CP_FILE="$CACHE/classpath.txt"

log() { echo "[kafka] $*" >&2; }
die() { echo "[kafka] ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- fetch
classpath_ok() {
  [[ -s "$CP_FILE" ]] || return 1
  local jar
  local IFS=':'
  for jar in $(cat "$CP_FILE"); do [[ -f "$jar" ]] || return 1; done
  return 0
}

cmd_fetch() {
  if classpath_ok; then log "classpath cached: $CP_FILE"; return 0; fi
  command -v mvn >/dev/null || die "mvn not found"
  mkdir -p "$CACHE"
  # Only Maven Central is reachable: mirror every repository a pom may declare to it.
  cat >"$CACHE/settings.xml" <<'EOF'
<settings>
  <mirrors>
    <mirror><id>central-only</id><mirrorOf>*</mirrorOf><url>https://repo1.maven.org/maven2</url></mirror>
  </mirrors>
</settings>
EOF
  # kafka_2.13 brings log4j-core but no SLF4J binding (the distribution adds one): without it the broker logs
  # nothing. slf4j-api is raised to 2.x to match the log4j-slf4j2-impl binding.
  cat >"$CACHE/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.edge</groupId>
  <artifactId>kafka-standalone-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>${KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.17</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.25.5</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.25.5</version></dependency>
  </dependencies>
</project>
EOF
  local offline=()
  [[ "${KAFKA_FETCH_OFFLINE:-}" == 1 ]] && offline=(-o)
  log "resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION (cold: ~40 MB)"
  local t0=$SECONDS
  (cd "$CACHE" && mvn -q -B -Dstyle.color=never "${offline[@]}" -s settings.xml -f pom.xml \
      dependency:build-classpath -Dmdep.outputFile="$CP_FILE.tmp" >&2) \
    || { rm -f "$CP_FILE.tmp"; die "maven resolution failed"; }
  mv "$CP_FILE.tmp" "$CP_FILE"
  classpath_ok || die "classpath incomplete after fetch"
  log "fetched in $((SECONDS - t0))s; $(tr ':' '\n' <"$CP_FILE" | wc -l) jars"
}

# ---------------------------------------------------------------- helpers
# Two distinct free ports, held open together while chosen.
free_ports() {
  node -e '
    const net = require("net");
    const servers = [0, 1].map(() => net.createServer());
    Promise.all(servers.map((s) => new Promise((r) => s.listen(0, "127.0.0.1", r)))).then(() => {
      console.log(servers.map((s) => s.address().port).join(" "));
      for (const s of servers) s.close();
    });'
}

# A KRaft cluster id: 16 random bytes, base64url without padding (what `kafka-storage random-uuid` prints).
random_cluster_id() {
  head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'
}

read_env() { # DIR -> STORED_* vars from DIR/ports.env
  STORED_PORT="" STORED_CONTROLLER=""
  if [[ -f "$1/ports.env" ]]; then
    STORED_PORT=$(sed -n 's/^KAFKA_PORT=//p' "$1/ports.env")
    STORED_CONTROLLER=$(sed -n 's/^KAFKA_CONTROLLER_PORT=//p' "$1/ports.env")
  fi
}

pid_of() { # DIR -> pid if the process is alive and is our broker for DIR
  local dir="$1" pid
  [[ -f "$dir/kafka.pid" ]] || return 1
  pid=$(cat "$dir/kafka.pid")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  # guard against PID reuse: the command line must mention this dir
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/" || return 1
  echo "$pid"
}

# Ready once the broker has logged that it finished starting, after the last start (the log is appended to
# across restarts, so only lines after the recorded offset count).
is_ready() { # DIR
  local from=1
  [[ -f "$1/logs/start.offset" ]] && from=$(($(cat "$1/logs/start.offset") + 1))
  tail -c "+$from" "$1/logs/kafka.log" 2>/dev/null | grep -q 'Kafka Server started'
}

wait_gone() { # PID TIMEOUT
  local pid=$1 end=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS >= end)) && return 1
    sleep 0.2
  done
}

java_cmd() { # CONFDIR -> the java command line prefix (options and classpath)
  echo java ${KAFKA_HEAP:--Xms128m -Xmx512m} ${KAFKA_JVM_OPTS--XX:+UseSerialGC -XX:TieredStopAtLevel=1} -XX:+ExitOnOutOfMemoryError \
    -Djava.net.preferIPv4Stack=true -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$1/log4j2.xml" -cp "$(cat "$CP_FILE")"
}

# ---------------------------------------------------------------- start
cmd_start() {
  local dir="${1:-}"
  if [[ -z "$dir" ]]; then dir=$(mktemp -d "${TMPDIR:-/tmp}/edge-kafka.XXXXXX"); fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if pid_of "$dir" >/dev/null; then die "already running in $dir (pid $(cat "$dir/kafka.pid"))"; fi
  command -v java >/dev/null || die "java not found (Kafka 4 needs Java 17+)"
  cmd_fetch

  read_env "$dir"
  local fresh_port fresh_controller
  read -r fresh_port fresh_controller < <(free_ports)
  local port="${KAFKA_PORT:-${STORED_PORT:-$fresh_port}}"
  local controller="${KAFKA_CONTROLLER_PORT:-${STORED_CONTROLLER:-$fresh_controller}}"
  [[ "$port" != "$controller" ]] || die "port clash"
  for p in "$port" "$controller"; do
    if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then die "port $p already in use"; fi
  done

  mkdir -p "$dir/conf" "$dir/data" "$dir/logs"
  local client_protocol=PLAINTEXT sasl_conf=""
  if [[ -n "${KAFKA_SASL_PLAIN_USERS:-}" ]]; then
    client_protocol=SASL_PLAINTEXT
    local users="" pair
    for pair in $KAFKA_SASL_PLAIN_USERS; do users+=" user_${pair%%:*}=\"${pair#*:}\""; done
    local admin_password
    admin_password=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
    sasl_conf="sasl.enabled.mechanisms=PLAIN
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"$admin_password\" user_admin=\"$admin_password\"$users;"
  fi
  cat >"$dir/conf/server.properties" <<EOF
# generated by scripts/kafka/standalone.sh
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:$client_protocol
log.dirs=$dir/data/kafka
num.partitions=${KAFKA_PARTITIONS:-4}
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
log.flush.interval.messages=1
controlled.shutdown.enable=true
$sasl_conf
${KAFKA_EXTRA_CONF:-}
EOF
  # log.flush.interval.messages=1: each produce is fsynced before it is acknowledged, so a SIGKILL of this
  # single replica (the crash tests) never loses what it acknowledged. A real cluster relies on replication.

  chmod 600 "$dir/conf/server.properties" # may hold SASL passwords
  cat >"$dir/conf/log4j2.xml" <<EOF
<Configuration status="warn">
  <Appenders>
    <File name="file" fileName="$dir/logs/kafka.log" append="true">
      <PatternLayout pattern="%d{ISO8601} %-5level [%t] %c{1} - %msg%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Root level="${KAFKA_LOG_LEVEL:-info}"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
EOF

  if [[ ! -f "$dir/data/kafka/meta.properties" ]]; then
    local cluster_id
    cluster_id=$(random_cluster_id)
    # shellcheck disable=SC2046
    $(java_cmd "$dir/conf") kafka.tools.StorageTool format --ignore-formatted -t "$cluster_id" \
      -c "$dir/conf/server.properties" >>"$dir/logs/format.log" 2>&1 \
      || { tail -n 20 "$dir/logs/format.log" >&2; die "storage format failed (see $dir/logs/format.log)"; }
    log "formatted $dir/data/kafka (cluster id $cluster_id)"
  fi

  touch "$dir/logs/kafka.log"
  stat -c %s "$dir/logs/kafka.log" >"$dir/logs/start.offset"
  local t0
  t0=$(date +%s.%N)
  # shellcheck disable=SC2046
  (cd "$dir" && exec nohup $(java_cmd "$dir/conf") kafka.Kafka "$dir/conf/server.properties" \
      >>"$dir/logs/stdout.log" 2>&1 </dev/null) &
  local pid=$!
  echo "$pid" >"$dir/kafka.pid"
  cat >"$dir/ports.env" <<EOF
KAFKA_DIR=$dir
KAFKA_PORT=$port
KAFKA_CONTROLLER_PORT=$controller
KAFKA_PID=$pid
KAFKA_BOOTSTRAP=127.0.0.1:$port
EOF
  log "starting pid $pid in $dir (broker $port, controller $controller)"

  local end=$((SECONDS + ${KAFKA_START_TIMEOUT:-120}))
  until is_ready "$dir"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$dir/logs/kafka.log" "$dir/logs/stdout.log" >&2 2>/dev/null || true
      die "broker exited during startup (see $dir/logs)"
    fi
    if ((SECONDS >= end)); then
      tail -n 40 "$dir/logs/kafka.log" >&2 2>/dev/null || true
      kill -KILL "$pid" 2>/dev/null || true
      die "not ready after ${KAFKA_START_TIMEOUT:-120}s (killed; see $dir/logs)"
    fi
    sleep 0.2
  done
  log "ready after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s"
  echo "$dir/ports.env"
}

# ---------------------------------------------------------------- stop / kill / status
cmd_stop() {
  local dir="${1:?usage: stop DIR}" pid
  dir=$(cd "$dir" && pwd)
  pid=$(pid_of "$dir") || { log "not running ($dir)"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" "${KAFKA_STOP_TIMEOUT:-30}"; then
    log "pid $pid did not exit after SIGTERM, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 30 || die "pid $pid still alive"
  fi
  rm -f "$dir/kafka.pid"
  log "stopped pid $pid"
}

cmd_kill() {
  local dir="${1:?usage: kill DIR}" pid
  dir=$(cd "$dir" && pwd)
  pid=$(pid_of "$dir") || { log "not running ($dir)"; return 0; }
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 30 || die "pid $pid still alive"
  rm -f "$dir/kafka.pid"
  log "killed pid $pid"
}

cmd_status() {
  local dir="${1:?usage: status DIR}" pid
  dir=$(cd "$dir" && pwd)
  pid=$(pid_of "$dir") || { echo "stopped"; return 1; }
  if is_ready "$dir"; then echo "ready pid=$pid"; else echo "starting pid=$pid"; return 2; fi
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  classpath) cmd_fetch && cat "$CP_FILE" ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  kill) shift; cmd_kill "$@" ;;
  status) shift; cmd_status "$@" ;;
  *) sed -n '2,28p' "$0" >&2; exit 64 ;;
esac
