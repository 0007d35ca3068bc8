#!/usr/bin/env bash
# Broker mode (issue 13), measured in one run on one machine: keyless A
# brokers AssumeRoleWithWebIdentity to keyless B playing AWS STS on loopback
# (B trusts A's built-in issuer as an IAM OIDC provider, as
# docs/broker.md's "Trying it on one machine" sets it up).
#
#   bench/broker.sh [DURATION]     (default 5s per measurement)
#
# Measured, with CI tokens of a loopback test issuer (RS256, as run.sh):
# - brokered exchanges/s at A (CI token validated, trust policy, durable
#   MintBrokerToken record, broker token signed by A's issuer, the call to
#   B, durable exchange record), with wrk at each of CONNS connections;
# - direct exchanges/s at B for the same upstream role, with tokens of A's
#   issuer (what the upstream costs alone);
# - the plain keyless exchange at A (the same role untagged: no broker);
# - with moto_server as upstream (it validates nothing), when found;
# - latency p50/p99 of the brokered exchange at A, the direct one at B and
#   the plain one at A at the same fixed RATE (open loop, benchkit latency,
#   alternating rounds): the added latency is brokered - direct;
# - the server CPU of A and B per request (/proc/PID/stat, as ab.sh), and
#   the TCP connections opened per request (A's to its upstream).
#
# Settings (environment): CONNS (default "16 64"); RATE (default 150/s);
# TOKENS (tokens per body file, default 5000; wrk cycles through them, and
# keyless, like AWS, accepts a token more than once); MOTO=0 skips moto;
# UPSTREAM_TLS=1 serves B over TLS with a self-signed P-256 certificate A
# trusts through SSL_CERT_FILE, so that every new upstream connection is a
# TLS handshake as with AWS (A then speaks HTTP/1.1 to B unless
# UPSTREAM_H2=1); ISSUER_ALG=ES256 gives A an ES256 issuer (by default
# RS256, whose signature is most of A's CPU per brokered exchange);
# PROFILE=FILE writes CPU profiles of A during the brokered runs to
# FILE.c<CONNS> (go tool pprof -top FILE.c64); KEYLESS_BIN measures that
# keyless binary instead of building the working tree (before/after
# comparisons); KEYLESS_BROKER_BENCH_PORT (default 18451; the next four
# ports too).
# Needs: go, wrk (Debian package), curl; moto_server (optional); openssl
# (UPSTREAM_TLS=1).
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-5s}
case $DUR in *[0-9]) DUR=${DUR}s ;; esac
CONNS=${CONNS:-16 64}
RATE=${RATE:-150}
TOKENS=${TOKENS:-5000}
ISSUER_ALG=${ISSUER_ALG:-RS256}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
export AWS_ACCESS_KEY_ID=AKIAKEYLESSBENCH0001 AWS_SECRET_ACCESS_KEY=keyless-bench-secret-0123456789abcdefgh AWS_DEFAULT_REGION=us-east-1
export KEYLESS_ADMIN_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID KEYLESS_ADMIN_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_STS AWS_ENDPOINT_URL_IAM AWS_SESSION_TOKEN
ACCT_A=123456789012
ACCT_B=222222222222
PORT=${KEYLESS_BROKER_BENCH_PORT:-18451}
PORT_B=$((PORT + 1)) PORT_MOTO=$((PORT + 2)) PORT_AM=$((PORT + 3))
A=http://127.0.0.1:$PORT
B=http://127.0.0.1:$PORT_B
AM=http://127.0.0.1:$PORT_AM
MOTO_URL=http://127.0.0.1:$PORT_MOTO
ROLE_A=arn:aws:iam::$ACCT_A:role/bench
ROLE_B=arn:aws:iam::$ACCT_B:role/bench
BROKER_SUB=keyless:$ACCT_A:role/bench
DIRECT_SUB=bench-direct # A's token endpoint refuses keyless: subjects to clients
MOTO=${MOTO:-1}
command -v moto_server >/dev/null || MOTO=0
THREADS=2

echo "== build"
if [ -n "${KEYLESS_BIN:-}" ]; then cp "$KEYLESS_BIN" "$WORK/keyless"; else go build -o "$WORK/keyless" ./cmd/keyless; fi
go build -o "$WORK/benchkit" ./bench/benchkit
nproc; uname -r; go version
echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' + working tree')${KEYLESS_BIN:+ (keyless: $KEYLESS_BIN)}"

echo "== a loopback test issuer minting $TOKENS CI tokens (RS256), in the background"
(cd "$WORK" && exec ./benchkit issuer -n "$TOKENS" -role-arn "$ROLE_A" -bodies bodies.txt -url-file issuer.url 2>issuer.log) &

serve() { # name url [VAR=value...] -- args...: starts keyless serve (pid in WORK/name.pid), waits for it
  local name=$1 url=$2
  shift 2
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" "$WORK/keyless" serve --data "$WORK/data-$name" --log-level warn "$@" >"$WORK/$name.log" 2>&1 &
  echo $! >"$WORK/$name.pid"
  for _ in $(seq 1 100); do curl -sfk "$url/healthz" >/dev/null && return; sleep 0.1; done
  echo "keyless $name did not start:" >&2; cat "$WORK/$name.log" >&2; exit 1
}

B_ARGS=() A_ENV=()
if [ "${UPSTREAM_TLS:-0}" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/b-key.pem" -out "$WORK/b-cert.pem" 2>/dev/null
  printf 'tls:\n  cert_file: %s\n  key_file: %s\n' "$WORK/b-cert.pem" "$WORK/b-key.pem" >"$WORK/b.yaml"
  B_ARGS=(--config "$WORK/b.yaml")
  B=https://127.0.0.1:$PORT_B
  export SSL_CERT_FILE=$WORK/b-cert.pem # A's broker and benchkit trust B's certificate
  # HTTP/1.1 from A to B, as AWS STS answers (HTTP/2 support varies by AWS
  # service; the query-protocol APIs answer HTTP/1.1): without it, Go
  # multiplexes every call over one HTTP/2 connection to B.
  [ "${UPSTREAM_H2:-0}" = 1 ] || A_ENV=(GODEBUG=http2client=0)
fi

echo "== B plays AWS (account $ACCT_B, $B); A brokers to it (AWS_ENDPOINT_URL_STS=$B; A's issuer signs $ISSUER_ALG)"
serve b "$B" -- --listen 127.0.0.1:$PORT_B --account-id $ACCT_B --allow-loopback-http-issuers "${B_ARGS[@]}"
issuer_args() { # url name: the flags giving a server its built-in issuer at url/oidc
  if [ "$ISSUER_ALG" = RS256 ]; then
    ISSUER_ARGS=(--issuer-url "$1/oidc")
  else
    printf 'issuers:\n  - id: default\n    url: %s/oidc\n    algorithm: %s\n' "$1" "$ISSUER_ALG" >"$WORK/$2.yaml"
    ISSUER_ARGS=(--config "$WORK/$2.yaml")
  fi
}
[ -n "${PROFILE:-}" ] && A_ENV+=(KEYLESS_DEBUG_LISTEN=127.0.0.1:$((PORT + 4)))
issuer_args "$A" a
serve a "$A" AWS_ENDPOINT_URL_STS="$B" "${A_ENV[@]}" -- --listen 127.0.0.1:$PORT --account-id $ACCT_A \
  "${ISSUER_ARGS[@]}" --allow-loopback-http-issuers
PID_A=$(cat "$WORK/a.pid") PID_B=$(cat "$WORK/b.pid")

echo "== B: A's issuer as IAM OIDC provider, role bench trusting $BROKER_SUB (and $DIRECT_SUB)"
"$WORK/benchkit" upstream-setup -endpoint-url "$B" -issuer-url "$A/oidc" -account-id $ACCT_B -role bench -subjects "$BROKER_SUB,$DIRECT_SUB"
echo "== mint $TOKENS tokens of A's issuer (sub $DIRECT_SUB) at A's token endpoint, for direct exchanges at B"
T0=$(date +%s.%N)
"$WORK/benchkit" mint-bodies -endpoint-url "$A" -n "$TOKENS" -subject $DIRECT_SUB -role-arn "$ROLE_B" -bodies "$WORK/bodies-direct.txt"
awk -v t0="$T0" -v t1="$(date +%s.%N)" -v n="$TOKENS" 'BEGIN { printf("minted %d tokens in %.1fs (%.0f/s, no throttling: the token endpoint is not rate-limited; only refusals are, per source)\n", n, t1 - t0, n / (t1 - t0)) }'

for _ in $(seq 1 900); do [ -s "$WORK/issuer.url" ] && break; sleep 0.1; done
ISSUER=$(cat "$WORK/issuer.url")
echo "== A: the CI issuer's provider, role bench (tagged keyless:upstream-role-arn=$ROLE_B) and bench-plain (the same trust, untagged)"
"$WORK/benchkit" setup -endpoint-url "$A" -issuer-url "$ISSUER" -account-id $ACCT_A
"$WORK/benchkit" broker-link -endpoint-url "$A" -role bench -upstream-role-arn "$ROLE_B" -plain-copy bench-plain
sed 's/role%2Fbench&/role%2Fbench-plain\&/' "$WORK/bodies.txt" >"$WORK/bodies-plain.txt"

if [ "$MOTO" = 1 ]; then
  echo "== moto_server as upstream: A' (same setup) brokers to moto, which validates nothing"
  moto_server -H 127.0.0.1 -p $PORT_MOTO >"$WORK/moto.log" 2>&1 &
  PID_MOTO=$!
  for _ in $(seq 1 100); do curl -s "$MOTO_URL/" >/dev/null 2>&1 && break; sleep 0.2; done
  issuer_args "$AM" am
  serve am "$AM" AWS_ENDPOINT_URL_STS="$MOTO_URL" -- --listen 127.0.0.1:$PORT_AM --account-id $ACCT_A \
    "${ISSUER_ARGS[@]}" --allow-loopback-http-issuers
  PID_AM=$(cat "$WORK/am.pid")
  "$WORK/benchkit" setup -endpoint-url "$AM" -issuer-url "$ISSUER" -account-id $ACCT_A
  "$WORK/benchkit" broker-link -endpoint-url "$AM" -role bench -upstream-role-arn "arn:aws:iam::123456789012:role/bench"
fi

check() { # name url bodies want-in-answer
  local got
  got=$(head -1 "$3" | curl -sk -X POST -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @- "$2/")
  case $got in *"$4"*) echo "$1: ok ($4)" ;; *) echo "$1: unexpected answer: $got" >&2; exit 1 ;; esac
}
echo "== sanity: each exchange answers with the expected role's credentials"
check brokered "$A" "$WORK/bodies.txt" "<Arn>arn:aws:sts::$ACCT_B:assumed-role/bench/"
check direct "$B" "$WORK/bodies-direct.txt" "<Arn>arn:aws:sts::$ACCT_B:assumed-role/bench/"
check plain "$A" "$WORK/bodies-plain.txt" "<Arn>arn:aws:sts::$ACCT_A:assumed-role/bench-plain/"
[ "$MOTO" = 1 ] && check brokered-moto "$AM" "$WORK/bodies.txt" "<AccessKeyId>"

echo "== warm up (JWKS fetched once, caches hot)"
warm() { BODIES=$2 wrk -t1 -c4 -d2s -s bench/bodies.lua "$1/" >/dev/null; }
warm "$A" "$WORK/bodies.txt"
warm "$B" "$WORK/bodies-direct.txt"
[ "$MOTO" = 1 ] && warm "$AM" "$WORK/bodies.txt"

proc_cpu() { [ -n "$1" ] && awk '{print $14+$15}' "/proc/$1/stat" || echo 0; } # clock ticks (1/100 s)
# TCP connections opened on this machine (Tcp: ActiveOpens; counts other
# processes' too): less wrk's own, per request, it is the connections A
# opened to its upstream (a closed connection may leave no TIME-WAIT: an
# RST after TLS).
tcp_opens() { awk '/^Tcp:/ && ++n == 2 { print $6 }' /proc/net/snmp; }
measure() { # name conns url bodies pid-front pid-upstream
  local c0 u0 o0 line c1 u1 o1 n
  if [ -n "${PROFILE:-}" ] && [ "$1" = brokered ]; then
    local secs=${DUR%s}
    [[ $secs =~ ^[0-9]+$ ]] && ((secs > 1)) || secs=2
    curl -s -o "$PROFILE.c$2" "http://127.0.0.1:$((PORT + 4))/debug/pprof/profile?seconds=$((secs - 1))" &
  fi
  c0=$(proc_cpu "$5"); u0=$(proc_cpu "$6"); o0=$(tcp_opens)
  line=$(BODIES="$4" wrk -t$THREADS -c"$2" -d"$DUR" -s bench/bodies.lua "$3/" | grep '^RESULT')
  c1=$(proc_cpu "$5"); u1=$(proc_cpu "$6"); o1=$(tcp_opens)
  case $line in *" errors=0") ;; *) echo "$1 c$2: wrk saw errors: $line" >&2; exit 1 ;; esac
  n=$(echo "$line" | sed 's/.*requests=\([0-9]*\).*/\1/')
  n=$((n > 0 ? n : 1))
  echo "$1 c$2 ${line#RESULT } front_cpu_us=$(((c1 - c0) * 10000 / n)) upstream_cpu_us=$(((u1 - u0) * 10000 / n)) new_conns_per_100=$(((o1 - o0 - $2) * 100 / n))" | tee -a "$WORK/results"
}

echo "== throughput (wrk, $DUR each; front = the server wrk calls, upstream = B or moto)"
for c in $CONNS; do
  measure brokered "$c" "$A" "$WORK/bodies.txt" "$PID_A" "$PID_B"
  measure direct "$c" "$B" "$WORK/bodies-direct.txt" "$PID_B" ""
  measure plain "$c" "$A" "$WORK/bodies-plain.txt" "$PID_A" ""
  if [ "$MOTO" = 1 ]; then
    measure brokered-moto "$c" "$AM" "$WORK/bodies.txt" "$PID_AM" "$PID_MOTO"
    measure moto "$c" "$MOTO_URL" "$WORK/bodies.txt" "$PID_MOTO" ""
  fi
done

echo "== latency at a fixed $RATE exchanges/s (open loop, 2 alternating rounds of $DUR)"
"$WORK/benchkit" latency -rate "$RATE" -duration "$DUR" -rounds 2 \
  -target "brokered=$A=$WORK/bodies.txt" -target "direct=$B=$WORK/bodies-direct.txt" -target "plain=$A=$WORK/bodies-plain.txt" |
  tee -a "$WORK/results"

echo "== A's broker metrics"
curl -s "$A/metrics" | grep -E '^keyless_broker_upstream_(total\{outcome="success"\}|duration_seconds_(sum|count)) ' | tee -a "$WORK/results" || true

echo
echo "== summary"
awk -v rate="$RATE" '
  function val(k,   i, a) { for (i = 3; i <= NF; i++) { split($i, a, "="); if (a[1] == k) return a[2] } return "" }
  $1 ~ /^(brokered|direct|plain|brokered-moto|moto)$/ {
    k = $1 " " $2; rps[k] = val("rps"); p50[k] = val("p50_us"); p99[k] = val("p99_us")
    fc[k] = val("front_cpu_us"); uc[k] = val("upstream_cpu_us"); cl[k] = val("new_conns_per_100")
    if (!($2 in seen)) { seen[$2] = 1; conns[++nc] = $2 }
  }
  $1 ~ /^latency-/ && $2 == "all" { n = substr($1, 9); l50[n] = val("p50_us"); l99[n] = val("p99_us"); err[n] = val("errors") }
  END {
    printf("%-14s %5s %8s %9s %9s %11s %14s %13s\n", "exchange", "conns", "req/s", "p50 ms", "p99 ms", "front cpu", "upstream cpu", "new conns/100")
    for (i = 1; i <= nc; i++) {
      split("brokered direct plain brokered-moto moto", names, " ")
      for (j = 1; j <= 5; j++) {
        k = names[j] " " conns[i]
        if (!(k in rps)) continue
        printf("%-14s %5s %8s %9.1f %9.1f %8s us %11s us %13s\n", names[j], substr(conns[i], 2), rps[k], p50[k] / 1000, p99[k] / 1000, fc[k], (uc[k] == "" ? "-" : uc[k]), cl[k])
      }
    }
    for (i = 1; i <= nc; i++) {
      c = conns[i]
      if (rps["direct " c] > 0) printf("%s: brokered/direct at B = %.2f, brokered/plain at A = %.2f", c, rps["brokered " c] / rps["direct " c], rps["brokered " c] / rps["plain " c])
      if (rps["moto " c] > 0) printf(", brokered via moto/brokered via B = %.2f", rps["brokered-moto " c] / rps["brokered " c])
      printf("\n")
    }
    printf("latency at %d/s: brokered p50 %.2f ms p99 %.2f ms; direct at B p50 %.2f ms p99 %.2f ms; plain at A p50 %.2f ms p99 %.2f ms (errors %d/%d/%d)\n",
      rate, l50["brokered"] / 1000, l99["brokered"] / 1000, l50["direct"] / 1000, l99["direct"] / 1000, l50["plain"] / 1000, l99["plain"] / 1000, err["brokered"], err["direct"], err["plain"])
    printf("added latency of brokering (brokered - direct): p50 +%.2f ms, p99 +%.2f ms\n", (l50["brokered"] - l50["direct"]) / 1000, (l99["brokered"] - l99["direct"]) / 1000)
  }' "$WORK/results"
