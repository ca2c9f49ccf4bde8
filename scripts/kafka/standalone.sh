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
#   KAFKA_PORT            client listener port (default: free port, or the one stored in DIR/ports.env)
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
#   KAFKA_SCRAM_USERS     if set ("user:password user2:password2"; no spaces, ',', '=' or ']' in them): the client
#                         listener takes SASL/SCRAM with these users, created when the storage is formatted (KRaft
#                         keeps SCRAM credentials in its metadata log, so only a fresh DIR takes new ones)
#   KAFKA_SCRAM_MECHANISM SCRAM-SHA-512 (default) or SCRAM-SHA-256
#   KAFKA_TLS_DIR         if set: a directory with server.key (PKCS#8 PEM), server.crt and ca.crt; the client
#                         listener takes TLS (SSL, or SASL_SSL with KAFKA_SCRAM_USERS)
#   KAFKA_INTERNAL_PORT   with KAFKA_SCRAM_USERS or KAFKA_TLS_DIR: the inter-broker PLAINTEXT listener's port
#   KAFKA_EXTRA_CONF      extra "key=value" lines appended to the broker config
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
CACHE_ROOT="${EDGE_KAFKA_HOME:-$HOME/.cache/edge-agent/kafka}"
CACHE="$CACHE_ROOT/$KAFKA_VERSION"
CP_FILE="$CACHE/classpath.txt"
SERVICE=kafka
# shellcheck source=../lib/java-service.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/java-service.sh"

# ---------------------------------------------------------------- fetch
cmd_fetch() {
  if classpath_ok; then log "classpath cached: $CP_FILE"; return 0; fi
  # kafka_2.13 brings log4j-core but no SLF4J binding (the distribution adds one): without it the broker logs
  # nothing. slf4j-api is raised to 2.x to match the log4j-slf4j2-impl binding.
  fetch_classpath "${KAFKA_FETCH_OFFLINE:-}" "org.apache.kafka:kafka_2.13:$KAFKA_VERSION (cold: ~40 MB)" <<EOF
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
}

# ---------------------------------------------------------------- helpers
# A KRaft cluster id: 16 random bytes, base64url without padding (what `kafka-storage random-uuid` prints).
# Never one starting with '-', as Kafka's own Uuid.randomUuid() makes sure: `format -t -x…` reads it as an
# option ("argument --cluster-id/-t: expected one argument"), which failed one broker start in 64.
random_cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ $id == -* ]] || break
  done
  echo "$id"
}

read_env() { # DIR -> STORED_* vars from DIR/ports.env
  STORED_PORT="" STORED_CONTROLLER="" STORED_INTERNAL=""
  if [[ -f "$1/ports.env" ]]; then
    STORED_PORT=$(sed -n 's/^KAFKA_PORT=//p' "$1/ports.env")
    STORED_CONTROLLER=$(sed -n 's/^KAFKA_CONTROLLER_PORT=//p' "$1/ports.env")
    STORED_INTERNAL=$(sed -n 's/^KAFKA_INTERNAL_PORT=//p' "$1/ports.env")
  fi
}

# Ready once the broker has logged that it finished starting, after the last start (the log is appended to
# across restarts, so only lines after the recorded offset count).
is_ready() { # DIR
  local from=1
  [[ -f "$1/logs/start.offset" ]] && from=$(($(cat "$1/logs/start.offset") + 1))
  tail -c "+$from" "$1/logs/kafka.log" 2>/dev/null | grep -q 'Kafka Server started'
}

java_cmd() { # CONFDIR -> the java command line prefix (options and classpath)
  echo java ${KAFKA_HEAP:--Xms128m -Xmx512m} ${KAFKA_JVM_OPTS--XX:+UseSerialGC -XX:TieredStopAtLevel=1} -XX:+ExitOnOutOfMemoryError \
    -Djava.net.preferIPv4Stack=true -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$1/log4j2.xml" -cp "$(cat "$CP_FILE")"
}

# ---------------------------------------------------------------- start
cmd_start() {
  prepare_dir "${1:-}"
  local dir=$START_DIR
  command -v java >/dev/null || die "java not found (Kafka 4 needs Java 17+)"
  cmd_fetch

  read_env "$dir"
  local fresh_port fresh_controller fresh_internal
  read -r fresh_port fresh_controller fresh_internal < <(free_ports 3)
  local port="${KAFKA_PORT:-${STORED_PORT:-$fresh_port}}"
  local controller="${KAFKA_CONTROLLER_PORT:-${STORED_CONTROLLER:-$fresh_controller}}"
  # With TLS or SCRAM on the client listener, the broker talks to itself on a separate PLAINTEXT listener on
  # 127.0.0.1: it then needs neither to trust the CA nor SCRAM credentials of its own, and the client
  # listener is exactly what a gateway meets (no admin user that a test could log in as by mistake).
  local internal=""
  if [[ -n "${KAFKA_SCRAM_USERS:-}" || -n "${KAFKA_TLS_DIR:-}" ]]; then
    [[ -z "${KAFKA_SASL_PLAIN_USERS:-}" ]] || die "KAFKA_SASL_PLAIN_USERS cannot be combined with KAFKA_SCRAM_USERS or KAFKA_TLS_DIR"
    internal="${KAFKA_INTERNAL_PORT:-${STORED_INTERNAL:-$fresh_internal}}"
  fi
  [[ "$port" != "$controller" && "$internal" != "$port" && "$internal" != "$controller" ]] || die "port clash"
  for p in "$port" "$controller" $internal; do
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
  # The client listener keeps its name PLAINTEXT whatever its protocol (the map below says which), so the
  # listener.name.plaintext.* settings and ports.env look the same in every mode.
  local scram_args=() inter_broker=PLAINTEXT listeners_extra="" protocol_extra=""
  if [[ -n "$internal" ]]; then
    inter_broker=INTERNAL
    listeners_extra=",INTERNAL://127.0.0.1:$internal"
    protocol_extra=",INTERNAL:PLAINTEXT"
  fi
  if [[ -n "${KAFKA_SCRAM_USERS:-}" ]]; then
    local mechanism="${KAFKA_SCRAM_MECHANISM:-SCRAM-SHA-512}" pair name secret
    [[ "$mechanism" == SCRAM-SHA-512 || "$mechanism" == SCRAM-SHA-256 ]] || die "KAFKA_SCRAM_MECHANISM: SCRAM-SHA-512 or SCRAM-SHA-256"
    for pair in $KAFKA_SCRAM_USERS; do
      name=${pair%%:*} secret=${pair#*:}
      [[ "$pair" == *:* && -n "$name" && -n "$secret" && "$pair" != *[,=\]]* ]] || die "KAFKA_SCRAM_USERS: user:password pairs, without ',', '=' or ']'"
      # On the format command line for the second it runs (the tool takes them no other way): test brokers only.
      scram_args+=(--add-scram "$mechanism=[name=$name,password=$secret]")
    done
    local lower
    lower=$(tr '[:upper:]' '[:lower:]' <<<"$mechanism")
    # The server side of SCRAM needs a login module but no credentials of its own (inter-broker is INTERNAL).
    sasl_conf="sasl.enabled.mechanisms=$mechanism
listener.name.plaintext.$lower.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
    client_protocol=SASL_PLAINTEXT
  fi
  if [[ -n "${KAFKA_TLS_DIR:-}" ]]; then
    local tls_dir f
    tls_dir=$(cd "$KAFKA_TLS_DIR" && pwd) || die "KAFKA_TLS_DIR $KAFKA_TLS_DIR: no such directory"
    for f in server.key server.crt ca.crt; do [[ -f "$tls_dir/$f" ]] || die "KAFKA_TLS_DIR: $tls_dir/$f missing"; done
    grep -q -- '-----BEGIN PRIVATE KEY-----' "$tls_dir/server.key" \
      || die "KAFKA_TLS_DIR: server.key must be an unencrypted PKCS#8 PEM (openssl pkcs8 -topk8 -nocrypt)"
    # A PEM keystore is one file: the private key, then the certificate chain.
    (umask 077 && cat "$tls_dir/server.key" "$tls_dir/server.crt" >"$dir/conf/keystore.pem")
    if [[ "$client_protocol" == SASL_PLAINTEXT ]]; then client_protocol=SASL_SSL; else client_protocol=SSL; fi
    sasl_conf+="
listener.name.plaintext.ssl.keystore.type=PEM
listener.name.plaintext.ssl.keystore.location=$dir/conf/keystore.pem
listener.name.plaintext.ssl.truststore.type=PEM
listener.name.plaintext.ssl.truststore.location=$tls_dir/ca.crt"
  fi
  cat >"$dir/conf/server.properties" <<EOF
# generated by scripts/kafka/standalone.sh
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller$listeners_extra
advertised.listeners=PLAINTEXT://127.0.0.1:$port$listeners_extra
controller.listener.names=CONTROLLER
inter.broker.listener.name=$inter_broker
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:$client_protocol$protocol_extra
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
  write_log4j2 "$dir" "${KAFKA_LOG_LEVEL:-info}"

  if [[ ! -f "$dir/data/kafka/meta.properties" ]]; then
    local cluster_id
    cluster_id=$(random_cluster_id)
    # shellcheck disable=SC2046
    $(java_cmd "$dir/conf") kafka.tools.StorageTool format --ignore-formatted -t "$cluster_id" \
      -c "$dir/conf/server.properties" "${scram_args[@]}" >>"$dir/logs/format.log" 2>&1 \
      || { tail -n 20 "$dir/logs/format.log" >&2; die "storage format failed (see $dir/logs/format.log)"; }
    log "formatted $dir/data/kafka (cluster id $cluster_id)"
  fi

  touch "$dir/logs/kafka.log"
  stat -c %s "$dir/logs/kafka.log" >"$dir/logs/start.offset"
  local t0
  t0=$(date +%s.%N)
  # shellcheck disable=SC2046
  launch "$dir" $(java_cmd "$dir/conf") kafka.Kafka "$dir/conf/server.properties"
  local pid=$LAUNCHED_PID
  cat >"$dir/ports.env" <<EOF
KAFKA_DIR=$dir
KAFKA_PORT=$port
KAFKA_CONTROLLER_PORT=$controller
KAFKA_INTERNAL_PORT=$internal
KAFKA_PID=$pid
KAFKA_BOOTSTRAP=127.0.0.1:$port
EOF
  log "starting pid $pid in $dir (broker $port, controller $controller${internal:+, inter-broker $internal})"

  wait_ready "$dir" "$pid" "${KAFKA_START_TIMEOUT:-120}" 0.2 "$t0" is_ready "$dir"
  echo "$dir/ports.env"
}

# ---------------------------------------------------------------- stop / kill / status
cmd_stop() { stop_service "${1:-}" "${KAFKA_STOP_TIMEOUT:-30}"; }

cmd_status() {
  local dir="${1:?usage: status DIR}" pid
  dir=$(cd "$dir" && pwd)
  pid=$(pid_of "$dir") || { echo "stopped"; return 1; }
  if is_ready "$dir"; then echo "ready pid=$pid"; else echo "starting pid=$pid"; return 2; fi
}

service_main 28 "$@"
