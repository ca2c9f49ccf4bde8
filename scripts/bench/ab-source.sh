#!/usr/bin/env bash
# Durable ingest and end to end from source, two checkouts pair by pair: the same Node (this checkout's
# pinned one), the same heap caps (48 MB old space, 1 MB semi-space), each worker pinned to core 0, a Mosquitto
# of its own and a subscriber standing for the centre on core 1. For comparing two commits of the agent when
# the older one's executable cannot be rebuilt: the workers (scripts/bench/e2e-worker.ts, ingest-worker.ts)
# run the agent from its source.
#
#   bash scripts/bench/ab-source.sh TREE_A TREE_B [PAIRS=3] [RECORDS=1000000]
#
# Each tree needs its own `npm ci` (e.g. `git worktree add /tmp/base <commit> && (cd /tmp/base && npm ci)`).
set -u
A=$1; B=$2; RUNS=${3:-3}; REC=${4:-1000000}
NODE="$(cd "$(dirname "$0")/../.." && pwd)/node_modules/.bin/node"
PORT=$((20000 + RANDOM % 20000))
CONF=$(mktemp -d)
printf 'listener %s 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\nmax_queued_messages 0\npersistence false\nlog_dest none\n' $PORT > $CONF/m.conf
/usr/sbin/mosquitto -c $CONF/m.conf & MP=$!
sleep 0.5
taskset -c 1 mosquitto_sub -h 127.0.0.1 -p $PORT -t 'edge-agent/#' -V mqttv5 > /dev/null & SP=$!
taskset -cp 1 $MP >/dev/null
sleep 0.5
for i in $(seq 1 $RUNS); do
  for T in $A $B; do
    cd $T
    e=$(taskset -c 0 $NODE --max-old-space-size=48 --max-semi-space-size=1 scripts/bench/e2e-worker.ts --url mqtt://127.0.0.1:$PORT --records $REC --seconds 120 2>/dev/null | tail -1)
    g=$(taskset -c 0 $NODE --max-old-space-size=48 --max-semi-space-size=1 scripts/bench/ingest-worker.ts --records $REC --seconds 60 2>/dev/null | tail -1)
    echo "$(basename $T) run $i e2e: $(echo "$e" | $NODE -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log(j.complete, Math.round(j.recordsPerSecondAfterStartup), "rec/s after start", (j.steadyCpuSecondsPer100k??0).toFixed(3), "CPU-s/100k")})') ingest: $(echo "$g" | $NODE -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log(Math.round(j.recordsPerSecond), "rec/s")})')"
  done
done
kill $SP $MP
rm -rf $CONF
