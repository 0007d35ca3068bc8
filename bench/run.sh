#!/usr/bin/env bash
# keyless benchmarks, measured the way the issues ask: wrk on loopback
# against a real `keyless serve`, beside moto_server measured the same way
# in the same run (ratios matter; absolute numbers drift on shared 2-core
# machines).
#
#   bench/run.sh [DURATION]        (default 10s per measurement)
#
# Needs: go, wrk (Debian package), moto_server. Prints a summary table.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10s}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
export AWS_ACCESS_KEY_ID=AKIAKEYLESSBENCH0001 AWS_SECRET_ACCESS_KEY=keyless-bench-secret-0123456789abcdefgh AWS_DEFAULT_REGION=us-east-1
export KEYLESS_ADMIN_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID KEYLESS_ADMIN_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
ACCT=123456789012
ROLE=arn:aws:iam::$ACCT:role/bench
PORT=${KEYLESS_BENCH_PORT:-18411}
MOTO_PORT=${MOTO_BENCH_PORT:-18412}
URL=http://127.0.0.1:$PORT
MOTO=http://127.0.0.1:$MOTO_PORT
THREADS=2
CONNS=${CONNS:-64}

echo "== build"
go build -o "$WORK/keyless" ./cmd/keyless
go build -o "$WORK/benchkit" ./bench/benchkit
# Benchmark-only build without the audit trail, to measure what it costs.
go build -tags keyless_bench_noaudit -o "$WORK/keyless-noaudit" ./cmd/keyless
nproc; uname -r; go version

echo "== start a test issuer and mint 20000 distinct RS256 tokens"
(cd "$WORK" && ./benchkit issuer -n 20000 -role-arn "$ROLE" -bodies bodies.txt -url-file issuer.url) &
for _ in $(seq 1 600); do [ -s "$WORK/issuer.url" ] && break; sleep 0.1; done
ISSUER=$(cat "$WORK/issuer.url")

echo "== start keyless serve"
"$WORK/keyless" serve --listen 127.0.0.1:$PORT --data "$WORK/data" --account-id $ACCT \
  --allow-loopback-http-issuers --log-level warn > "$WORK/keyless.log" 2>&1 &
for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
"$WORK/benchkit" setup -endpoint-url "$URL" -issuer-url "$ISSUER" -account-id $ACCT

echo "== start moto_server"
moto_server -H 127.0.0.1 -p $MOTO_PORT > "$WORK/moto.log" 2>&1 &
for _ in $(seq 1 100); do curl -s "$MOTO/" >/dev/null 2>&1 && break; sleep 0.2; done

run_wrk() { # name url script [env]
  local name=$1 url=$2 script=$3
  local line
  line=$(BODIES="$WORK/bodies.txt" wrk -t$THREADS -c$CONNS -d"$DUR" -s "bench/$script" "$url" | grep '^RESULT')
  echo "$name $line" | tee -a "$WORK/results"
}

echo "== warm up (JWKS fetched once, caches hot)"
BODIES="$WORK/bodies.txt" wrk -t1 -c4 -d2s -s bench/bodies.lua "$URL/" >/dev/null

echo "== AssumeRoleWithWebIdentity: keyless (RS256 validation, trust policy, durable audit) vs moto (no validation)"
run_wrk keyless-exchange "$URL/" bodies.lua
run_wrk moto-exchange "$MOTO/" bodies.lua

echo "== the audit trail's cost: the same exchange against a build that records nothing"
"$WORK/keyless-noaudit" serve --listen 127.0.0.1:$((PORT+10)) --data "$WORK/data-noaudit" --account-id $ACCT \
  --allow-loopback-http-issuers --log-level error > "$WORK/noaudit.log" 2>&1 &
NOAUDIT_PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$((PORT+10))/healthz" >/dev/null && break; sleep 0.1; done
"$WORK/benchkit" setup -endpoint-url "http://127.0.0.1:$((PORT+10))" -issuer-url "$ISSUER" -account-id $ACCT
BODIES="$WORK/bodies.txt" wrk -t1 -c4 -d2s -s bench/bodies.lua "http://127.0.0.1:$((PORT+10))/" >/dev/null
run_wrk noaudit-exchange "http://127.0.0.1:$((PORT+10))/" bodies.lua
run_wrk keyless-exchange-again "$URL/" bodies.lua
kill $NOAUDIT_PID

echo "== GetRole over loopback with a presigned request (SigV4 verify + store read + XML)"
GETROLE=$("$WORK/benchkit" presign -endpoint-url "$URL" -service iam -query "Action=GetRole&Version=2010-05-08&RoleName=bench")
run_wrk keyless-getrole "$GETROLE" get.lua
MOTO_GETROLE=$("$WORK/benchkit" presign -endpoint-url "$MOTO" -service iam -query "Action=ListRoles&Version=2010-05-08")
run_wrk moto-listroles "$MOTO_GETROLE" get.lua

echo "== GetCallerIdentity with session credentials (presigned STS request)"
eval "$("$WORK/benchkit" exchange -endpoint-url "$URL" -bodies "$WORK/bodies.txt")"
GCI=$("$WORK/benchkit" presign -endpoint-url "$URL" -service sts -query "Action=GetCallerIdentity&Version=2011-06-15")
run_wrk keyless-getcalleridentity "$GCI" get.lua
MOTO_GCI=$("$WORK/benchkit" presign -endpoint-url "$MOTO" -service sts -query "Action=GetCallerIdentity&Version=2011-06-15")
run_wrk moto-getcalleridentity "$MOTO_GCI" get.lua
export AWS_ACCESS_KEY_ID=$KEYLESS_ADMIN_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$KEYLESS_ADMIN_SECRET_ACCESS_KEY
unset AWS_SESSION_TOKEN

echo "== latency at a fixed 2000 exchanges/s (open loop)"
"$WORK/benchkit" rate -endpoint-url "$URL" -bodies "$WORK/bodies.txt" -rate 2000 -duration "$DUR" | tee -a "$WORK/results"

echo "== audit journal during the run"
curl -s "$URL/metrics" | grep -E '^keyless_audit_(journal_fsyncs_total|durable_events_total|events_total) ' | tee -a "$WORK/results"

echo
echo "== summary"
awk '
  /^keyless-exchange/ {split($3,a,"="); ke=a[2]} /^moto-exchange/ {split($3,a,"="); me=a[2]}
  /^noaudit-exchange/ {split($3,a,"="); na=a[2]} /^keyless-exchange-again/ {split($3,a,"="); ke2=a[2]}
  /^keyless-getcalleridentity/ {split($3,a,"="); kg=a[2]} /^moto-getcalleridentity/ {split($3,a,"="); mg=a[2]}
  {print}
  END {
    if (me > 0) printf("AssumeRoleWithWebIdentity: keyless/moto = %.1fx\n", ke/me);
    if (mg > 0) printf("GetCallerIdentity: keyless/moto = %.1fx\n", kg/mg);
    if (na > 0) printf("audit trail cost: %.0f%% of exchange throughput (mean of two audited runs vs the no-audit build)\n", 100*(1-((ke+ke2)/2)/na));
  }' "$WORK/results"
