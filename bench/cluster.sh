#!/bin/bash
# Usage: bench/cluster.sh (after cargo build --release; PostgreSQL and Redis on localhost).
# 1 node vs 3 nodes on PostgreSQL + Redis; nodes on core 0, load generator on core 1.
BIN=/work/main/target/release/confab
run_nodes() { # n schema prefix
  local n=$1 schema=$2 prefix=$3 pids=()
  for i in $(seq 1 $n); do
    RATE_LIMIT_SOCKET_MESSAGES=0 RATE_LIMIT_SOCKET_JOINS=0 RATE_LIMIT_MAX=0 CONFAB_MAX_CONNECTIONS_PER_IP=0 CONFAB_MAX_CONNECTIONS_PER_ENTITY=0 \
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test CONFAB_PG_SCHEMA=$schema REDIS_URL=redis://127.0.0.1:6379 CONFAB_REDIS_PREFIX=$prefix \
      taskset -c 0 $BIN --host 127.0.0.1 --port $((3800+i)) --node-id n$i --data-dir /tmp/cb-$i > /tmp/cb-$i.out 2>/tmp/cb-$i.err &
    pids+=($!)
    for k in $(seq 100); do grep -q listening /tmp/cb-$i.out 2>/dev/null && break; sleep 0.1; done
  done
  echo "${pids[@]}"
}
for n in 1 3; do
  for case in "--rate 1000" "--window 8"; do
    for rep in 1 2; do
      schema=cb_${n}_$RANDOM; pids=$(run_nodes $n $schema cb$RANDOM)
      spread=""; [ $n = 3 ] && spread="--spread http://127.0.0.1:3802,http://127.0.0.1:3803"
      echo "== nodes=$n $case rep=$rep"
      timeout 120 taskset -c 1 $BIN bench fanout --url http://127.0.0.1:3801 $spread -c 200 -k 20 $case -d 10 --drain 5 -q 2>&1 | grep -E 'delivered|latency ms:'
      kill $pids; sleep 1
      psql -h 127.0.0.1 -U postgres -d test -qc "drop schema $schema cascade" 2>/dev/null
    done
  done
done
