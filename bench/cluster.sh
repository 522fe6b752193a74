#!/bin/bash
# Usage: bench/cluster.sh [fanout|relay-tax|all] (PostgreSQL and Redis on localhost).
#   fanout     1 node vs 3 nodes (after cargo build --release); nodes on core 0, load on core 1.
#   relay-tax  three nodes, each node's clients in their own channels: each node's CPU seconds
#              per 1,000 messages committed cluster-wide, for BEFORE_BIN and AFTER_BIN (e.g. a
#              build of main and of this branch). A node with no members in a channel should
#              spend close to nothing on it. RT_LOADED=2: node 3 has no client at all.
#   spread     three nodes, clients spread over nodes and channels: lost / duplicated (the bench
#              does not check per-channel order; tests/e2e/cluster.test.mjs does).
BIN=${BIN:-/work/main/target/release/confab}
PG=postgres://postgres@127.0.0.1:5432/test
run_nodes() { # bin n schema prefix
  local bin=$1 n=$2 schema=$3 prefix=$4 pids=()
  for i in $(seq 1 $n); do
    rm -f /tmp/cb-$i.out
    RATE_LIMIT_SOCKET_MESSAGES=0 RATE_LIMIT_SOCKET_JOINS=0 RATE_LIMIT_MAX=0 CONFAB_MAX_CONNECTIONS_PER_IP=0 CONFAB_MAX_CONNECTIONS_PER_ENTITY=0 \
    DATABASE_URL=$PG CONFAB_PG_SCHEMA=$schema REDIS_URL=redis://127.0.0.1:6379 CONFAB_REDIS_PREFIX=$prefix \
      taskset -c 0 $bin --host 127.0.0.1 --port $((3800+i)) --node-id n$i --data-dir /tmp/cb-$i > /tmp/cb-$i.out 2>/tmp/cb-$i.err &
    pids+=($!)
    for k in $(seq 300); do grep -q listening /tmp/cb-$i.out 2>/dev/null && break; sleep 0.1; done
  done
  echo "${pids[@]}"
}
cpu_seconds() { # pid: user + system CPU seconds so far
  awk -v hz=$(getconf CLK_TCK) '{ printf "%.3f", ($14 + $15) / hz }' /proc/$1/stat
}
fanout() {
  for n in 1 3; do
    for case in "--rate 1000" "--window 8"; do
      for rep in 1 2; do
        schema=cb_${n}_$RANDOM; pids=$(run_nodes $BIN $n $schema cb$RANDOM)
        spread=""; [ $n = 3 ] && spread="--spread http://127.0.0.1:3802,http://127.0.0.1:3803"
        echo "== nodes=$n $case rep=$rep"
        timeout 120 taskset -c 1 $BIN bench fanout --url http://127.0.0.1:3801 $spread -c 200 -k 20 $case -d 10 --drain 5 -q 2>&1 | grep -E 'delivered|latency ms:'
        kill $pids; sleep 1
        psql -h 127.0.0.1 -U postgres -d test -qc "drop schema $schema cascade" 2>/dev/null
      done
    done
  done
}
relay_tax_once() { # label bin
  local label=$1 bin=$2 schema=rt_$RANDOM
  local pids=($(run_nodes $bin 3 $schema rt$RANDOM))
  sleep 2
  local before=() after=()
  for p in "${pids[@]}"; do before+=($(cpu_seconds $p)); done
  # One load generator per node, each with its own channels (every client of a channel on the
  # same node), so no channel has members on two nodes.
  # RT_LOADED=2 leaves node 3 without any client: what it spends is the relay tax alone.
  for i in $(seq 1 ${RT_LOADED:-3}); do
    timeout 120 taskset -c 1 ${GEN:-$bin} bench fanout --url http://127.0.0.1:$((3800+i)) \
      -c ${RT_CLIENTS:-40} -k ${RT_CHANNELS:-4} --rate ${RT_RATE:-100} -d ${RT_SECONDS:-10} --drain 3 -q \
      > /tmp/rt-$i.out 2>&1 &
  done
  wait
  for p in "${pids[@]}"; do after+=($(cpu_seconds $p)); done
  local committed
  committed=$(psql -h 127.0.0.1 -U postgres -d test -tAc "select count(*) from $schema.central_messages")
  local line="$label: committed=$committed"
  for i in 0 1 2; do
    line+=" n$((i+1))=$(awk -v a=${before[$i]} -v b=${after[$i]} -v m=$committed 'BEGIN { printf "%.3f", (b - a) / m * 1000 }')"
  done
  echo "$line  (CPU s per 1000 messages committed cluster-wide)"
  kill "${pids[@]}"; sleep 1
  psql -h 127.0.0.1 -U postgres -d test -qc "drop schema $schema cascade" 2>/dev/null
}
spread() { # correctness under spread: clients round-robin over three nodes; -k 5 puts every
  # channel's members on all three nodes (-k 6 would make every channel node-local)
  for bin in ${BEFORE_BIN:?set BEFORE_BIN} ${AFTER_BIN:?set AFTER_BIN}; do
    local schema=sp_$RANDOM pids
    pids=$(run_nodes $bin 3 $schema sp$RANDOM)
    echo "== spread $bin -k ${SP_CHANNELS:-5}"
    timeout 120 taskset -c 1 ${GEN:-$bin} bench fanout --url http://127.0.0.1:3801 --spread http://127.0.0.1:3802,http://127.0.0.1:3803 \
      -c 60 -k ${SP_CHANNELS:-5} --senders-per-channel 3 --rate 150 -d 8 --drain 4 -q 2>&1 | grep -E 'delivered|^  latency ms:'
    kill $pids; sleep 1
    psql -h 127.0.0.1 -U postgres -d test -qc "drop schema $schema cascade" 2>/dev/null
  done
}
relay_tax() {
  for rep in 1 2; do
    relay_tax_once "before ($BEFORE_BIN)" ${BEFORE_BIN:?set BEFORE_BIN}
    relay_tax_once "after ($AFTER_BIN)" ${AFTER_BIN:?set AFTER_BIN}
  done
}
case ${1:-fanout} in
  fanout) fanout ;;
  relay-tax) relay_tax ;;
  spread) spread ;;
  all) fanout; relay_tax; spread ;;
esac
