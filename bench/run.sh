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
(cd "$WORK" && exec ./benchkit issuer -n 20000 -role-arn "$ROLE" -bodies bodies.txt -url-file issuer.url) &
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
# Throughput is measured at saturation: with 64 connections the audited
# server is partly latency-bound (each exchange waits ~1-3 ms for its group's
# fsync, so 64 clients cannot keep two cores busy) and the ratio would
# measure the wait, not the cost. 256 connections saturate both builds.
# Rounds alternate between the two servers so that drift on a shared
# machine hits both alike; the summary gives every round and the median.
"$WORK/keyless-noaudit" serve --listen 127.0.0.1:$((PORT+10)) --data "$WORK/data-noaudit" --account-id $ACCT \
  --allow-loopback-http-issuers --log-level error > "$WORK/noaudit.log" 2>&1 &
NOAUDIT_PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$((PORT+10))/healthz" >/dev/null && break; sleep 0.1; done
"$WORK/benchkit" setup -endpoint-url "http://127.0.0.1:$((PORT+10))" -issuer-url "$ISSUER" -account-id $ACCT
BODIES="$WORK/bodies.txt" wrk -t1 -c4 -d2s -s bench/bodies.lua "http://127.0.0.1:$((PORT+10))/" >/dev/null
KEYLESS_PID=$(pgrep -f -- "--listen 127.0.0.1:$PORT " | head -1)
proc_cpu() { awk '{print $14+$15}' "/proc/$1/stat"; } # clock ticks (1/100 s)
ab_round() { # name url pid conns
  local c0 c1 line n
  c0=$(proc_cpu "$3")
  line=$(BODIES="$WORK/bodies.txt" wrk -t$THREADS -c"$4" -d"$AB_DUR" -s bench/bodies.lua "$2" | grep '^RESULT')
  c1=$(proc_cpu "$3")
  n=$(echo "$line" | sed 's/.*requests=\([0-9]*\).*/\1/')
  echo "$1 $line server_cpu_us_per_req=$(( (c1-c0)*10000/(n>0?n:1) ))" | tee -a "$WORK/results"
}
journal() { curl -s "$URL/metrics" | awk '/^keyless_audit_durable_events_total /{e=$2} /^keyless_audit_journal_fsyncs_total /{f=$2} END{print e+0, f+0}'; }
AB_DUR=${AB_DUR:-6s}
read -r E0 F0 < <(journal)
for round in $(seq 1 "${AB_ROUNDS:-5}"); do
  ab_round "ab-audit-c256" "$URL/" "$KEYLESS_PID" 256
  ab_round "ab-noaudit-c256" "http://127.0.0.1:$((PORT+10))/" "$NOAUDIT_PID" 256
done
read -r E1 F1 < <(journal)
echo "journal at 256 connections: $((E1-E0)) durable events, $((F1-F0)) fsyncs, $(( (E1-E0) / ((F1-F0)>0 ? (F1-F0) : 1) )) events per fsync" | tee -a "$WORK/results"
for round in 1 2; do
  ab_round "ab-audit-c64" "$URL/" "$KEYLESS_PID" 64
  ab_round "ab-noaudit-c64" "http://127.0.0.1:$((PORT+10))/" "$NOAUDIT_PID" 64
done
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
  }' "$WORK/results"
# The audit trail's cost per round (audited vs no-audit, consecutive runs).
awk '
  function rps(s,  a) { split(s, a, "="); return a[2] }
  function cpu(s,  a) { split(s, a, "="); return a[2] }
  $1 ~ /^ab-audit-/   { c=substr($1, 10); ka[c, ++na[c]] = rps($3); kc[c, na[c]] = cpu($NF) }
  $1 ~ /^ab-noaudit-/ { c=substr($1, 12); nb[c, ++nn[c]] = rps($3); nc[c, nn[c]] = cpu($NF) }
  END {
    split("c256 c64", cs, " ")
    for (j = 1; j <= 2; j++) {
      c = cs[j]; m = 0
      line = ""
      for (i = 1; i <= na[c] && i <= nn[c]; i++) {
        v[++m] = 100 * (1 - ka[c, i] / nb[c, i])
        line = line sprintf(" %.1f%%", v[m])
        cpud = cpud + (kc[c, i] - nc[c, i])
      }
      if (m == 0) continue
      for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++) if (v[y] < v[x]) { t = v[x]; v[x] = v[y]; v[y] = t }
      med = (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
      printf("audit trail cost at %s: median %.1f%% of exchange throughput (rounds:%s); server CPU +%.0f us per exchange\n", c, med, line, cpud / m)
      cpud = 0
    }
  }' "$WORK/results"
