# shellcheck shell=bash
# Shared parts of the scripts that run a real Java broker from Maven Central jars (scripts/kafka/standalone.sh,
# scripts/pulsar/standalone.sh): classpath fetch, free ports, PID file handling, start-up wait, stop/kill and
# the sub-command dispatch. Sourced, not run. Before sourcing, the caller sets:
#   SERVICE   short name: log prefix "[SERVICE]", DIR/SERVICE.pid, DIR/logs/SERVICE.log
#   CACHE     cache dir for the generated pom, settings and classpath
#   CP_FILE   the cached classpath file (inside CACHE)
# and afterwards defines cmd_fetch, cmd_start and cmd_status.

log() { echo "[$SERVICE] $*" >&2; }
die() { echo "[$SERVICE] ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- fetch
classpath_ok() {
  [[ -s "$CP_FILE" ]] || return 1
  local jar
  local IFS=':'
  for jar in $(cat "$CP_FILE"); do [[ -f "$jar" ]] || return 1; done
  return 0
}

# Resolve the dependencies of the pom on stdin into CACHE/.m2 and write their classpath to CP_FILE.
fetch_classpath() { # OFFLINE(1|"") DESCRIPTION  < pom.xml
  local offline_flag="$1" description="$2"
  command -v mvn >/dev/null || die "mvn not found"
  mkdir -p "$CACHE"
  cat >"$CACHE/pom.xml"
  # Only Maven Central is reachable; the poms may declare extra repositories, so mirror everything to
  # Central (otherwise resolution fails on unknown hosts).
  cat >"$CACHE/settings.xml" <<'EOF'
<settings>
  <mirrors>
    <mirror><id>central-only</id><mirrorOf>*</mirrorOf><url>https://repo1.maven.org/maven2</url></mirror>
  </mirrors>
</settings>
EOF
  local offline=()
  [[ "$offline_flag" == 1 ]] && offline=(-o)
  log "resolving $description"
  local t0=$SECONDS
  (cd "$CACHE" && mvn -q -B -Dstyle.color=never "${offline[@]}" -s settings.xml -f pom.xml \
      dependency:build-classpath -Dmdep.outputFile="$CP_FILE.tmp" >&2) \
    || { rm -f "$CP_FILE.tmp"; die "maven resolution failed"; }
  mv "$CP_FILE.tmp" "$CP_FILE"
  classpath_ok || die "classpath incomplete after fetch"
  log "fetched in $((SECONDS - t0))s; $(tr ':' '\n' <"$CP_FILE" | wc -l) jars"
}

# ---------------------------------------------------------------- helpers
# COUNT distinct free ports, held open together while chosen (one at a time, the kernel may hand out the same
# port twice once the first listener has closed).
free_ports() { # COUNT
  node -e '
    const net = require("net");
    const servers = Array.from({ length: Number(process.argv[1]) }, () => net.createServer());
    Promise.all(servers.map((s) => new Promise((r) => s.listen(0, "127.0.0.1", r)))).then(() => {
      console.log(servers.map((s) => s.address().port).join(" "));
      for (const s of servers) s.close();
    });' "$1"
}

pid_of() { # DIR -> pid if the process is alive and is our broker for DIR
  local dir="$1" pid
  [[ -f "$dir/$SERVICE.pid" ]] || return 1
  pid=$(cat "$dir/$SERVICE.pid")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  # guard against PID reuse: the command line must mention this dir
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/" || return 1
  echo "$pid"
}

wait_gone() { # PID TIMEOUT
  local pid=$1 end=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS >= end)) && return 1
    sleep 0.2
  done
}

# DIR (or a fresh mktemp dir) made absolute into START_DIR; refuses a DIR whose broker is running.
prepare_dir() { # [DIR]
  local dir="${1:-}"
  if [[ -z "$dir" ]]; then dir=$(mktemp -d "${TMPDIR:-/tmp}/edge-$SERVICE.XXXXXX"); fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if pid_of "$dir" >/dev/null; then die "already running in $dir (pid $(cat "$dir/$SERVICE.pid"))"; fi
  START_DIR=$dir
}

# log4j2 configuration: everything at LEVEL into DIR/logs/SERVICE.log (appended across restarts).
write_log4j2() { # DIR LEVEL
  cat >"$1/conf/log4j2.xml" <<EOF
<Configuration status="warn">
  <Appenders>
    <File name="file" fileName="$1/logs/$SERVICE.log" append="true">
      <PatternLayout pattern="%d{ISO8601} %-5level [%t] %c{1} - %msg%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Root level="$2"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
EOF
}

# Start COMMAND in the background in DIR (output to DIR/logs/stdout.log), record its pid in DIR/SERVICE.pid
# and in LAUNCHED_PID.
launch() { # DIR COMMAND...
  local dir="$1"
  shift
  (cd "$dir" && exec nohup "$@" >>"$dir/logs/stdout.log" 2>&1 </dev/null) &
  LAUNCHED_PID=$!
  echo "$LAUNCHED_PID" >"$dir/$SERVICE.pid"
}

# Poll CHECK... every INTERVAL seconds until it succeeds; die (after SIGKILL on timeout) when the broker exits
# or TIMEOUT seconds pass. T0 is the launch time (date +%s.%N) for the "ready after" line.
wait_ready() { # DIR PID TIMEOUT INTERVAL T0 CHECK...
  local dir="$1" pid="$2" timeout="$3" interval="$4" t0="$5"
  shift 5
  local end=$((SECONDS + timeout))
  until "$@"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$dir/logs/$SERVICE.log" "$dir/logs/stdout.log" >&2 2>/dev/null || true
      die "broker exited during startup (see $dir/logs)"
    fi
    if ((SECONDS >= end)); then
      tail -n 40 "$dir/logs/$SERVICE.log" >&2 2>/dev/null || true
      kill -KILL "$pid" 2>/dev/null || true
      die "not ready after ${timeout}s (killed; see $dir/logs)"
    fi
    sleep "$interval"
  done
  log "ready after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s"
}

# ---------------------------------------------------------------- stop / kill
stop_service() { # DIR TIMEOUT: SIGTERM, then SIGKILL after TIMEOUT seconds
  local dir="${1:?usage: stop DIR}" timeout="$2" pid
  dir=$(cd "$dir" && pwd)
  pid=$(pid_of "$dir") || { log "not running ($dir)"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" "$timeout"; then
    log "pid $pid did not exit after SIGTERM, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 30 || die "pid $pid still alive"
  fi
  rm -f "$dir/$SERVICE.pid"
  log "stopped pid $pid"
}

cmd_kill() {
  local dir="${1:?usage: kill DIR}" pid
  dir=$(cd "$dir" && pwd)
  pid=$(pid_of "$dir") || { log "not running ($dir)"; return 0; }
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 30 || die "pid $pid still alive"
  rm -f "$dir/$SERVICE.pid"
  log "killed pid $pid"
}

# The sub-command dispatch; anything else prints the script's header lines 2..USAGE_END as usage.
service_main() { # USAGE_END ARGS...
  local usage_end="$1"
  shift
  case "${1:-}" in
    fetch) cmd_fetch ;;
    classpath) cmd_fetch && cat "$CP_FILE" ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    kill) shift; cmd_kill "$@" ;;
    status) shift; cmd_status "$@" ;;
    *) sed -n "2,${usage_end}p" "$0" >&2; exit 64 ;;
  esac
}
