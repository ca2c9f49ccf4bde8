#!/usr/bin/env bash
# Run a real Apache Pulsar standalone broker from Maven Central artifacts (no tarball, no containers).
#
#   standalone.sh fetch                 resolve pulsar-broker + deps into ~/.m2 once, cache the classpath
#   standalone.sh start [DIR]           start in background (DIR or a fresh mktemp dir), wait until ready,
#                                       print the path of DIR/ports.env
#   standalone.sh stop DIR              SIGTERM, then SIGKILL after PULSAR_STOP_TIMEOUT seconds
#   standalone.sh kill DIR              SIGKILL immediately (crash tests); `start DIR` again reuses data + ports
#   standalone.sh status DIR            exit 0 if running and ready
#   standalone.sh classpath             print the cached classpath (runs fetch if needed)
#
# Environment:
#   PULSAR_VERSION        (default 4.0.7)
#   EDGE_PULSAR_HOME      cache dir (default $HOME/.cache/edge-agent/pulsar)
#   PULSAR_BROKER_PORT    pulsar:// port (default: free port, or the one stored in DIR/ports.env)
#   PULSAR_WEB_PORT       http:// + ws:// port (same defaulting)
#   PULSAR_BOOKIE_PORT    embedded bookie port (same defaulting; must stay the same across restarts)
#   PULSAR_START_TIMEOUT  seconds to wait for readiness (default 180)
#   PULSAR_STOP_TIMEOUT   seconds between SIGTERM and SIGKILL (default 30)
#   PULSAR_HEAP           (default "-Xms256m -Xmx1g"), PULSAR_DIRECT_MEM (default 1g)
#   PULSAR_DEDUP          brokerDeduplicationEnabled (default true)
#   PULSAR_AUTH_TOKEN_SECRET_FILE  if set: enable token auth (HS256 secret key file, raw bytes);
#                                  the broker/websocket internal client uses PULSAR_AUTH_TOKEN (a JWT signed
#                                  with that key, subject "admin", which is made superuser)
#   PULSAR_LOG_LEVEL      (default info); log goes to DIR/logs/pulsar.log
#   PULSAR_EXTRA_CONF     extra "key=value" lines appended to the broker config
set -euo pipefail

PULSAR_VERSION="${PULSAR_VERSION:-4.0.7}"
CACHE_ROOT="${EDGE_PULSAR_HOME:-$HOME/.cache/edge-agent/pulsar}"
CACHE="$CACHE_ROOT/$PULSAR_VERSION"
CP_FILE="$CACHE/classpath.txt"
MAIN_CLASS="org.apache.pulsar.PulsarStandaloneStarter"
SERVICE=pulsar
# shellcheck source=../lib/java-service.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/java-service.sh"

# ---------------------------------------------------------------- fetch
cmd_fetch() {
  if classpath_ok; then log "classpath cached: $CP_FILE"; return 0; fi
  # log4j-core/api are pinned: transitively a 2.18 core is picked next to a 2.23 slf4j2 binding.
  fetch_classpath "${PULSAR_FETCH_OFFLINE:-}" "org.apache.pulsar:pulsar-broker:$PULSAR_VERSION (cold: ~270 MB, ~75 s)" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.edge</groupId>
  <artifactId>pulsar-standalone-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.pulsar</groupId><artifactId>pulsar-broker</artifactId><version>${PULSAR_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>2.23.1</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.23.1</version></dependency>
  </dependencies>
</project>
EOF
}

# ---------------------------------------------------------------- helpers
read_env() { # DIR -> sources DIR/ports.env into STORED_* vars
  STORED_BROKER="" STORED_WEB="" STORED_BOOKIE=""
  if [[ -f "$1/ports.env" ]]; then
    STORED_BROKER=$(sed -n 's/^PULSAR_BROKER_PORT=//p' "$1/ports.env")
    STORED_WEB=$(sed -n 's/^PULSAR_WEB_PORT=//p' "$1/ports.env")
    STORED_BOOKIE=$(sed -n 's/^PULSAR_BOOKIE_PORT=//p' "$1/ports.env")
  fi
}

is_ready() { # WEBPORT [TOKEN]
  local auth=()
  [[ -n "${2:-}" ]] && auth=(-H "Authorization: Bearer $2")
  [[ "$(curl -s -o /dev/null -w '%{http_code}' -m 3 "${auth[@]}" \
        "http://127.0.0.1:$1/admin/v2/namespaces/public/default")" == 200 ]]
}

# ---------------------------------------------------------------- start
cmd_start() {
  prepare_dir "${1:-}"
  local dir=$START_DIR
  cmd_fetch

  read_env "$dir"
  local fresh_broker fresh_web fresh_bookie
  read -r fresh_broker fresh_web fresh_bookie < <(free_ports 3)
  local broker="${PULSAR_BROKER_PORT:-${STORED_BROKER:-$fresh_broker}}"
  local web="${PULSAR_WEB_PORT:-${STORED_WEB:-$fresh_web}}"
  local bookie="${PULSAR_BOOKIE_PORT:-${STORED_BOOKIE:-$fresh_bookie}}"
  [[ "$broker" != "$web" && "$broker" != "$bookie" && "$web" != "$bookie" ]] || die "port clash"
  for p in "$broker" "$web" "$bookie"; do
    if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then die "port $p already in use"; fi
  done

  mkdir -p "$dir/conf" "$dir/data" "$dir/logs"
  local token="" auth_conf=""
  if [[ -n "${PULSAR_AUTH_TOKEN_SECRET_FILE:-}" ]]; then
    [[ -n "${PULSAR_AUTH_TOKEN:-}" ]] || die "PULSAR_AUTH_TOKEN (JWT for subject admin) required with PULSAR_AUTH_TOKEN_SECRET_FILE"
    token="$PULSAR_AUTH_TOKEN"
    auth_conf="authenticationEnabled=true
authenticationProviders=org.apache.pulsar.broker.authentication.AuthenticationProviderToken
tokenSecretKey=file://$(cd "$(dirname "$PULSAR_AUTH_TOKEN_SECRET_FILE")" && pwd)/$(basename "$PULSAR_AUTH_TOKEN_SECRET_FILE")
authorizationEnabled=true
superUserRoles=admin
brokerClientAuthenticationPlugin=org.apache.pulsar.client.impl.auth.AuthenticationToken
brokerClientAuthenticationParameters=token:$token
webSocketAuthenticationEnabled=true"
  fi

  cat >"$dir/conf/standalone.conf" <<EOF
# generated by scripts/pulsar/standalone.sh
clusterName=standalone
bindAddress=127.0.0.1
advertisedAddress=127.0.0.1
brokerServicePort=$broker
webServicePort=$web
numIOThreads=2
numHttpServerThreads=4
webSocketServiceEnabled=true
functionsWorkerEnabled=false
brokerDeduplicationEnabled=${PULSAR_DEDUP:-true}
allowAutoTopicCreation=true
allowAutoTopicCreationType=non-partitioned
brokerDeleteInactiveTopicsEnabled=false
systemTopicEnabled=true
topicLevelPoliciesEnabled=true
defaultNumberOfNamespaceBundles=1
managedLedgerDefaultEnsembleSize=1
managedLedgerDefaultWriteQuorum=1
managedLedgerDefaultAckQuorum=1
managedLedgerCacheSizeMB=64
brokerShutdownTimeoutMs=5000
# embedded bookie (this file is also loaded as the bookie config). Without allowEphemeralPorts=true the
# standalone ignores --bookkeeper-port and picks a random port; on restart it reuses the port from the cookie.
allowEphemeralPorts=true
journalSyncData=true
journalMaxGroupWaitMSec=1
dbStorage_writeCacheMaxSizeMb=64
dbStorage_readAheadCacheMaxSizeMb=32
dbStorage_rocksDB_blockCacheSize=33554432
${auth_conf}
${PULSAR_EXTRA_CONF:-}
EOF

  write_log4j2 "$dir" "${PULSAR_LOG_LEVEL:-info}"

  local java_opts=(
    ${PULSAR_HEAP:--Xms256m -Xmx1g} "-XX:MaxDirectMemorySize=${PULSAR_DIRECT_MEM:-1g}"
    -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError
    -Djava.net.preferIPv4Stack=true
    -Dio.netty.tryReflectionSetAccessible=true
    --add-opens java.base/java.io=ALL-UNNAMED
    --add-opens java.base/java.nio=ALL-UNNAMED
    --add-opens java.base/java.util.zip=ALL-UNNAMED
    --add-opens java.base/sun.net=ALL-UNNAMED
    --add-opens java.base/jdk.internal.misc=ALL-UNNAMED
    --add-opens java.base/jdk.internal.platform=ALL-UNNAMED
    --add-opens java.management/sun.management=ALL-UNNAMED
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
    "-Dlog4j2.configurationFile=$dir/conf/log4j2.xml"
    "-Dpulsar.standalone.dir=$dir/"
  )
  local args=(
    --config "$dir/conf/standalone.conf"
    --no-functions-worker --no-stream-storage
    --metadata-dir "$dir/data/metadata"
    --bookkeeper-dir "$dir/data/bookkeeper"
    --bookkeeper-port "$bookie"
    --advertised-address 127.0.0.1
  )

  local t0
  t0=$(date +%s.%N)
  launch "$dir" java "${java_opts[@]}" -cp "$(cat "$CP_FILE")" "$MAIN_CLASS" "${args[@]}"
  local pid=$LAUNCHED_PID
  cat >"$dir/ports.env" <<EOF
PULSAR_DIR=$dir
PULSAR_BROKER_PORT=$broker
PULSAR_WEB_PORT=$web
PULSAR_BOOKIE_PORT=$bookie
PULSAR_PID=$pid
PULSAR_SERVICE_URL=pulsar://127.0.0.1:$broker
PULSAR_WEB_URL=http://127.0.0.1:$web
PULSAR_WS_URL=ws://127.0.0.1:$web
EOF
  log "starting pid $pid in $dir (broker $broker, web $web, bookie $bookie)"

  wait_ready "$dir" "$pid" "${PULSAR_START_TIMEOUT:-180}" 0.5 "$t0" is_ready "$web" "$token"
  echo "$dir/ports.env"
}

# ---------------------------------------------------------------- stop / kill / status
cmd_stop() { stop_service "${1:-}" "${PULSAR_STOP_TIMEOUT:-30}"; }

cmd_status() {
  local dir="${1:?usage: status DIR}" pid
  dir=$(cd "$dir" && pwd)
  pid=$(pid_of "$dir") || { echo "stopped"; return 1; }
  read_env "$dir"
  if is_ready "$STORED_WEB" "${PULSAR_AUTH_TOKEN:-}"; then echo "ready pid=$pid"; else echo "starting pid=$pid"; return 2; fi
}

service_main 27 "$@"
