#!/usr/bin/env bash
# Fuzzes the real binary against its own OpenAPI document with schemathesis (issue 16), twice:
#   1. authentication off: no 500 on any route, every status documented, every body matching
#      its schema, malformed input refused (4xx);
#   2. authentication on (ELIZA_SERVER_AUTH_TOKEN), with the key: the same checks, plus
#      `ignored_auth`: every protected route refuses the request without credentials.
# Each run starts the debug binary on a free port with a fresh data directory. The number of
# examples per operation is bounded (CONFAB_FUZZ_EXAMPLES, default 10) so the whole run takes a
# few minutes on a small machine. Schemathesis comes from .ci/run (.venv-fuzz).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${CONFAB_BIN:-$root/target/debug/confab}"
st="${CONFAB_SCHEMATHESIS:-$root/.venv-fuzz/bin/st}"
examples="${CONFAB_FUZZ_EXAMPLES:-10}"
[ -x "$st" ] || { echo "schemathesis not installed ($st): run .ci/run, or python3 -m venv .venv-fuzz && .venv-fuzz/bin/pip install -r tests/fuzz/requirements.txt"; exit 1; }

work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Starts the server with the given environment; sets $url.
start() {
  local name=$1; shift
  mkdir -p "$work/$name"
  # The request rate limit is lifted: the fuzzer sends thousands of requests in minutes.
  env LOG_LEVEL=error RATE_LIMIT_MAX=100000000 "$@" "$bin" serve --host 127.0.0.1 --port 0 --data-dir "$work/$name" \
    >"$work/$name.out" 2>"$work/$name.err" &
  pid=$!
  url=""
  for _ in $(seq 200); do
    url=$(grep -o 'listening on http://[0-9.:]*' "$work/$name.out" | head -1 | sed 's/listening on //') || true
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/$name.err"; echo "confab exited"; exit 1; }
    sleep 0.1
  done
  [ -n "$url" ] || { echo "confab did not start"; cat "$work/$name.err"; exit 1; }
}

stop() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
}

# Not `negative_data_rejection`: like ElizaOS, text fields take any scalar (a number is its
# decimal text), which schemathesis counts as accepting a wrongly typed value.
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
common=(
  --max-examples "$examples" --workers 1 --request-timeout 15 --seed 16
  --phases examples,coverage,fuzzing --generation-database none --no-color
  --suppress-health-check all
  # The agent-run routes wait for a reply that never comes without an agent; creating and
  # deleting agents, servers and logs is exercised by the e2e suites.
  --exclude-path-regex '/sessions/\{session_id\}/messages$'
)

echo "== schemathesis: authentication off"
start open
"$st" run "$url/api/openapi.json" --url "$url" --checks "$checks" "${common[@]}"
stop

echo "== schemathesis: authentication on"
start auth ELIZA_SERVER_AUTH_TOKEN=fuzz-secret
"$st" run "$url/api/openapi.json" --url "$url" --checks "$checks,ignored_auth" -H "X-API-KEY: fuzz-secret" \
  --exclude-tag reference "${common[@]}"
stop
echo "schemathesis: 2 passed, 0 failed"
