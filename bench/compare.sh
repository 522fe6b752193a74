#!/usr/bin/env bash
# Side-by-side benchmark: confab vs a plain Node socket.io server (bench/node-peer, same hot path,
# no storage) vs the real ElizaOS 1.7.2 server (npm @elizaos/server, embedded PGlite), all loaded
# by the same `confab bench` load generator, in one run.
#
#   bench/compare.sh [--quick] [--reps N] [--servers confab,node,eliza] [--cases a,b,...] [--out DIR]
#                    [--soak-minutes M]
#
# * The `soak` case (only when named in --cases; confab and node): one server for M minutes
#   (--soak-minutes, default 10) at 2 000 msg/s (SOAK_RATE), 200 clients / 20 channels, run as
#   consecutive one-minute load runs against the same server (its database and heap carry over;
#   clients reconnect between minutes). Per minute: latency percentiles, lost/duplicates, server
#   RSS and RssAnon; then p99 over the whole soak (the worst minute's, a bound) and the RSS
#   growth over its second half. Written to $OUT/soak-<server>.md (and soak-raw/).
#
# * Installs what it needs: `npm ci` in bench/node-peer; @elizaos/server@1.7.2 (+ core, plugin-sql)
#   into $ELIZA_DIR (default bench/.peers/eliza, git-ignored) if missing; builds confab --release.
# * A fresh server per case and repetition (fresh database), killed by its PID afterwards.
# * Server pinned to core $SERVER_CPU (0), load generator to core $LOADGEN_CPU (1) with taskset.
# * Loopback only; every load run is bounded by its own --max-time and by `timeout`.
# * Writes $OUT/raw/<server>--<case>--<rep>.json (+ .txt, server logs), then
#   `confab bench summarize $OUT/raw` → table.md, summary.json, latency.svg, copied to $OUT.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0; REPS=; SERVERS=confab,node,eliza; CASES=; OUT=; SOAK_MINUTES=10
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --reps) REPS=$2; shift ;;
    --servers) SERVERS=$2; shift ;;
    --cases) CASES=$2; shift ;;
    --out) OUT=$2; shift ;;
    --soak-minutes) SOAK_MINUTES=$2; shift ;;
    -h|--help) sed -n 2,24p "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 64 ;;
  esac
  shift
done
[ -n "$REPS" ] || { [ $QUICK = 1 ] && REPS=1 || REPS=3; }
STAMP=$(date +%Y-%m-%d)
[ -n "$OUT" ] || { [ $QUICK = 1 ] && OUT=$ROOT/bench/results/$STAMP-quick || OUT=$ROOT/bench/results/$STAMP; }
RAW=$OUT/raw
mkdir -p "$RAW"
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
ELIZA_DIR=${ELIZA_DIR:-$ROOT/bench/.peers/eliza}
WORK=$(mktemp -d /tmp/confab-compare.XXXXXX)
PORT_CONFAB=${PORT_CONFAB:-3610}; PORT_NODE=${PORT_NODE:-3620}; PORT_ELIZA=${PORT_ELIZA:-3630}
log() { echo "[compare $(date +%H:%M:%S)] $*" >&2; }

# 20 000 connections need 20 000+ descriptors on both ends. Where the hard limit cannot be raised
# (no CAP_SYS_RESOURCE; 20 000 here), t4 uses 19 900 connections, the most that fit on both ends.
ulimit -n 1048576 2>/dev/null || ulimit -n 262144 2>/dev/null || ulimit -n "$(ulimit -Hn)"
log "open files limit $(ulimit -n)"

# ---------------------------------------------------------------- setup
log "building confab (release)"
(cd "$ROOT" && cargo build --release -p confab) || { echo "cargo build failed" >&2; exit 1; }
BIN=$ROOT/target/release/confab
if [[ ",$SERVERS," == *",node,"* ]] && [ ! -d "$ROOT/bench/node-peer/node_modules/socket.io" ]; then
  log "npm ci in bench/node-peer"
  (cd "$ROOT/bench/node-peer" && npm ci --no-audit --no-fund) || exit 1
fi
if [[ ",$SERVERS," == *",eliza,"* ]] && [ ! -d "$ELIZA_DIR/node_modules/@elizaos/server" ]; then
  log "installing @elizaos/server@1.7.2 into $ELIZA_DIR (about 1.5 min)"
  mkdir -p "$ELIZA_DIR"
  (cd "$ELIZA_DIR" && { [ -f package.json ] || npm init -y >/dev/null; } &&
    npm install --no-audit --no-fund @elizaos/server@1.7.2 @elizaos/core@1.7.2 @elizaos/plugin-sql@1.7.2) || exit 1
fi

# ---------------------------------------------------------------- servers
PID=; URL=
start_server() { # server name, log file
  local s=$1 logf=$2 ready= i
  case $s in
    confab)
      rm -rf "$WORK/confab-data"
      # The per-client limits (100 messages/min per entity, 1 000 sockets per IP, /api rate
      # limit) exist to stop abuse; a load generator on one address is that abuse by design,
      # and the references have no such limits: they are off for the benchmark.
      RATE_LIMIT_SOCKET_MESSAGES=0 RATE_LIMIT_SOCKET_JOINS=0 RATE_LIMIT_MAX=0 \
        CONFAB_MAX_CONNECTIONS_PER_IP=0 CONFAB_MAX_CONNECTIONS_PER_ENTITY=0 \
        taskset -c "$SERVER_CPU" "$BIN" --host 127.0.0.1 --port $PORT_CONFAB --data-dir "$WORK/confab-data" >"$logf" 2>&1 &
      PID=$!; URL=http://127.0.0.1:$PORT_CONFAB; ready="confab listening" ;;
    node)
      (cd "$ROOT/bench/node-peer" && PORT=$PORT_NODE HOST=127.0.0.1 exec taskset -c "$SERVER_CPU" node server.js) >"$logf" 2>&1 &
      PID=$!; URL=http://127.0.0.1:$PORT_NODE; ready="node-peer listening" ;;
    eliza)
      cp "$ROOT/bench/eliza/start-eliza.mjs" "$ELIZA_DIR/start-eliza.mjs"
      rm -rf "$WORK/eliza-data"
      (cd "$ELIZA_DIR" && SERVER_HOST=127.0.0.1 SERVER_PORT=$PORT_ELIZA ELIZA_UI_ENABLE=false LOG_LEVEL=warn \
        PGLITE_DATA_DIR="$WORK/eliza-data/pglite" exec taskset -c "$SERVER_CPU" node start-eliza.mjs) >"$logf" 2>&1 &
      PID=$!; URL=http://127.0.0.1:$PORT_ELIZA; ready="ELIZA_READY" ;;
  esac
  for i in $(seq 1 240); do
    grep -q "$ready" "$logf" 2>/dev/null && break
    kill -0 $PID 2>/dev/null || { log "$s exited at startup; see $logf"; PID=; return 1; }
    sleep 0.25
  done
  grep -q "$ready" "$logf" || { log "$s not ready in 60 s"; stop_server; return 1; }
  sleep 2 # let startup garbage settle before the RSS baseline
}
stop_server() {
  [ -n "$PID" ] || return 0
  kill "$PID" 2>/dev/null
  for i in $(seq 1 40); do kill -0 "$PID" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$PID" 2>/dev/null && kill -9 "$PID" 2>/dev/null
  wait "$PID" 2>/dev/null
  PID=
}
cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- cases
# name | servers | confab bench arguments. 200 clients / 20 channels = 10 deliveries per message.
if [ $QUICK = 1 ]; then D=3; BIG=2000; IDLE=2000; CONN=1000; RATES="1000 4000"; ELIZA_RATES="500"
else D=10; BIG=${T4_CONNECTIONS:-19900}; IDLE=10000; CONN=5000; RATES="1000 2000 4000 8000"; ELIZA_RATES="250 500 1000"; fi
FAN="-c 200 -k 20 --payload 100 --drain 5"
CASE_LIST=()
CASE_LIST+=("closed|confab,node,eliza|fanout $FAN --window 8 -d $D")
for r in $RATES; do CASE_LIST+=("rate$r|confab,node|fanout $FAN --rate $r -d $D"); done
for r in $ELIZA_RATES; do CASE_LIST+=("rate$r|eliza|fanout $FAN --rate $r -d $D"); done
CASE_LIST+=("ingest|confab,node,eliza|ingest --senders 100 --window 8 -d $D")
CASE_LIST+=("idle10k|confab,node,eliza|idle -c $IDLE -k 100 --hold $D")
# T4: 20 000 connections (19 900 where the fd limit is 20 000), 10 members per channel like the
# other fanout cases, 2 000 msg/s → 20 000 deliveries/s.
CASE_LIST+=("t4|confab,node|fanout -c $BIG -k $((BIG / 10)) --rate 2000 -d $((D * 2)) --drain 10")
CASE_LIST+=("connect|confab,node,eliza|connect -c $CONN")
# The default ELIZA agent answering 1 000 DM sessions (confab only: the references have no agent).
CASE_LIST+=("agent|confab|agent --sessions 1000 --rate 500 -d $D")

# ---------------------------------------------------------------- soak
# Not in the default set: only `--cases ...,soak` runs it (10 minutes per server by default).
SOAK_RATE=${SOAK_RATE:-2000}
rss_anon_kb() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
run_soak() { # server
  local s=$1 base=$OUT/soak-raw/$1--soak m extra= md=$OUT/soak-$1.md
  mkdir -p "$OUT/soak-raw"
  start_server "$s" "$base.server.log" || return 1
  [ $s = node ] && extra="--create-channels false"
  log "$s soak: $SOAK_MINUTES minutes at $SOAK_RATE msg/s"
  {
    echo "# soak: $s, $SOAK_MINUTES × 1 min at $SOAK_RATE msg/s, 200 clients / 20 channels ($(date -u +%FT%TZ))"
    echo
    echo "| minute | delivered | lost | dup | p50 ms | p99 ms | p99.9 ms | max ms | RSS MB (end) | RssAnon MB (end) |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
  } >"$md"
  for m in $(seq 1 "$SOAK_MINUTES"); do
    # shellcheck disable=SC2086
    timeout 200 taskset -c "$LOADGEN_CPU" "$BIN" bench fanout -c 200 -k 20 --payload 100 --rate "$SOAK_RATE" \
      -d 60 --drain 2 --url "$URL" --pid "$PID" --quiet --label "$s" --output "$base-$m.json" $extra \
      >"$base-$m.txt" 2>&1 || log "  minute $m: exit $? (see $base-$m.txt)"
    kill -0 "$PID" 2>/dev/null || { log "$s exited during the soak"; break; }
    python3 - "$base-$m.json" "$m" "$(rss_anon_kb "$PID")" >>"$md" <<'PY'
import json, sys
path, minute, anon = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    d = json.load(open(path))
except Exception as e:
    print(f"| {minute} | failed: {e} |"); sys.exit()
l, s, srv = d.get("latency") or {}, d.get("send") or {}, d.get("server") or {}
anon_mb = f"{int(anon) / 1024:.1f}" if anon.strip() else "–"
print(f"| {minute} | {s.get('delivered', 0)} | {s.get('lost', 0)} | {s.get('duplicates', 0)} "
      f"| {l.get('p50_ms', '–')} | {l.get('p99_ms', '–')} | {l.get('p999_ms', '–')} | {l.get('max_ms', '–')} "
      f"| {srv.get('rss_end_mb', 0):.1f} | {anon_mb} |")
PY
    tail -1 "$md" >&2
  done
  python3 - "$md" >>"$md" <<'PY'
import sys
rows = [l.split("|")[1:-1] for l in open(sys.argv[1]) if l.startswith("| ") and l.split("|")[1].strip().isdigit()]
rows = [[c.strip() for c in r] for r in rows if len(r) >= 10 and r[5] not in ("–", "")]
if rows:
    num = lambda i: [float(r[i]) for r in rows]
    # From the end of the first half's last minute to the end of the soak.
    half = rows[max(len(rows) // 2 - 1, 0):]
    print()
    print(f"Whole soak: {sum(int(r[1]) for r in rows)} delivered, lost {sum(int(r[2]) for r in rows)}, "
          f"duplicates {sum(int(r[3]) for r in rows)}; worst minute p99 {max(num(5))} ms, "
          f"p99.9 {max(num(6))} ms, max {max(num(7))} ms; median minute p99 {sorted(num(5))[(len(rows) - 1) // 2]} ms.")
    print(f"RSS over the second half (end of minute {half[0][0]} → end of minute {half[-1][0]}): {float(half[0][8]):.1f} → "
          f"{float(half[-1][8]):.1f} MB; RssAnon {half[0][9]} → {half[-1][9]} MB.")
PY
  stop_server
  cat "$md" >&2
}
if [[ ",$CASES," == *",soak,"* ]]; then
  for s in confab node; do
    [[ ",$SERVERS," == *",$s,"* ]] && run_soak "$s"
  done
fi

for rep in $(seq 1 "$REPS"); do
  for entry in "${CASE_LIST[@]}"; do
    IFS='|' read -r name servers args <<<"$entry"
    [ -n "$CASES" ] && [[ ",$CASES," != *",$name,"* ]] && continue
    for s in ${servers//,/ }; do
      [[ ",$SERVERS," == *",$s,"* ]] || continue
      base=$RAW/$s--$name--$rep
      start_server "$s" "$base.server.log" || continue
      extra=
      [ $s = node ] && extra="--create-channels false"
      log "$s $name rep $rep: confab bench $args"
      # shellcheck disable=SC2086
      timeout 300 taskset -c "$LOADGEN_CPU" "$BIN" bench $args --url "$URL" --pid "$PID" --quiet \
        --label "$s" --output "$base.json" $extra >"$base.txt" 2>&1
      rc=$?
      [ $rc = 0 ] || log "  exit $rc (see $base.txt)"
      sed -n 2,5p "$base.txt" >&2
      grep -h '^  machine' "$base.txt" >&2
      stop_server
    done
  done
done

ls "$RAW"/*.json >/dev/null 2>&1 || { log "done: $OUT"; exit 0; }
"$BIN" bench summarize "$RAW" --title "confab vs Node socket.io vs ElizaOS 1.7.2 ($(date +%F), $(nproc) cores, server on core $SERVER_CPU, load generator on core $LOADGEN_CPU)" >/dev/null
cp "$RAW/table.md" "$RAW/summary.json" "$OUT/" 2>/dev/null
[ -f "$RAW/latency.svg" ] && cp "$RAW/latency.svg" "$OUT/"
log "done: $OUT/table.md"
cat "$OUT/table.md"
