#!/usr/bin/env bash
# A/B of the working tree against an earlier commit, in one run on one
# machine: both builds serve side by side, wrk measures them in
# alternating rounds (so drift on a shared machine hits both alike), and
# the summary gives every round's ratio and the median.
#
#   bench/ab.sh [BASE_REF] [DURATION]     (default: HEAD, 6s per round)
#
# Measured: AssumeRoleWithWebIdentity at 64 and 256 connections (token
# validation, trust policy, durable audit record), GetRole (presigned:
# SigV4, store read, authorization table, XML), and GetCallerIdentity with
# session credentials. ROUNDS sets the rounds (default 5).
# Needs: go, git, wrk (Debian package).
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${1:-HEAD}
DUR=${2:-6s}
case $DUR in *[0-9]) DUR=${DUR}s ;; esac
ROUNDS=${ROUNDS:-5}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; git worktree remove --force "$WORK/base-src" 2>/dev/null || true; rm -rf "$WORK"' EXIT
export AWS_ACCESS_KEY_ID=AKIAKEYLESSBENCH0001 AWS_SECRET_ACCESS_KEY=keyless-bench-secret-0123456789abcdefgh AWS_DEFAULT_REGION=us-east-1
export KEYLESS_ADMIN_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID KEYLESS_ADMIN_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
ACCT=123456789012
ROLE=arn:aws:iam::$ACCT:role/bench
PORT_A=${AB_PORT:-18431}
PORT_B=$((PORT_A + 1))

echo "== build: base $(git rev-parse --short "$BASE") and the working tree"
git worktree add --detach "$WORK/base-src" "$BASE" >/dev/null
(cd "$WORK/base-src" && go build -o "$WORK/keyless-base" ./cmd/keyless)
go build -o "$WORK/keyless-new" ./cmd/keyless
go build -o "$WORK/benchkit" ./bench/benchkit
nproc; go version

(cd "$WORK" && exec ./benchkit issuer -n 20000 -role-arn "$ROLE" -bodies bodies.txt -url-file issuer.url) &
for _ in $(seq 1 600); do [ -s "$WORK/issuer.url" ] && break; sleep 0.1; done
ISSUER=$(cat "$WORK/issuer.url")

start() { # binary port name
  "$1" serve --listen 127.0.0.1:"$2" --data "$WORK/data-$3" --account-id $ACCT \
    --allow-loopback-http-issuers --log-level warn > "$WORK/$3.log" 2>&1 &
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && break; sleep 0.1; done
  "$WORK/benchkit" setup -endpoint-url "http://127.0.0.1:$2" -issuer-url "$ISSUER" -account-id $ACCT
  BODIES="$WORK/bodies.txt" wrk -t1 -c4 -d2s -s bench/bodies.lua "http://127.0.0.1:$2/" >/dev/null
}
start "$WORK/keyless-base" $PORT_A base
start "$WORK/keyless-new" $PORT_B new
PID_A=$(pgrep -f -- "--listen 127.0.0.1:$PORT_A " | head -1)
PID_B=$(pgrep -f -- "--listen 127.0.0.1:$PORT_B " | head -1)
proc_cpu() { awk '{print $14+$15}' "/proc/$1/stat"; } # clock ticks (1/100 s)

presigned() { # port service query [session]
  "$WORK/benchkit" presign -endpoint-url "http://127.0.0.1:$1" -service "$2" -query "$3"
}
GETROLE_A=$(presigned $PORT_A iam "Action=GetRole&Version=2010-05-08&RoleName=bench")
GETROLE_B=$(presigned $PORT_B iam "Action=GetRole&Version=2010-05-08&RoleName=bench")
session_gci() { # port
  (eval "$("$WORK/benchkit" exchange -endpoint-url "http://127.0.0.1:$1" -bodies "$WORK/bodies.txt")"
   presigned "$1" sts "Action=GetCallerIdentity&Version=2011-06-15")
}
GCI_A=$(session_gci $PORT_A)
GCI_B=$(session_gci $PORT_B)

measure() { # pid url script conns: prints "requests/s server-CPU-µs-per-request"; non-2xx answers abort the run
  local line c0 c1 n
  c0=$(proc_cpu "$1")
  line=$(BODIES="$WORK/bodies.txt" wrk -t2 -c"$4" -d"$DUR" -s "bench/$3" "$2" | grep '^RESULT')
  c1=$(proc_cpu "$1")
  case $line in *" errors=0"*) ;; *) echo "wrk saw errors: $line" >&2; exit 1 ;; esac
  n=$(echo "$line" | sed 's/.*requests=\([0-9]*\).*/\1/')
  echo "$(echo "$line" | sed 's/.* rps=\([0-9.]*\).*/\1/') $(( (c1-c0)*10000000/(n>0?n:1) ))"
}
for round in $(seq 1 "$ROUNDS"); do
  for m in "exchange-c64|/|bodies.lua|64" "exchange-c256|/|bodies.lua|256" "getrole|GETROLE|get.lua|64" "getcalleridentity|GCI|get.lua|64"; do
    IFS='|' read -r name path script conns <<<"$m"
    case $path in
      /) ua="http://127.0.0.1:$PORT_A/"; ub="http://127.0.0.1:$PORT_B/" ;;
      GETROLE) ua=$GETROLE_A; ub=$GETROLE_B ;;
      GCI) ua=$GCI_A; ub=$GCI_B ;;
    esac
    # Alternate which build goes first.
    if (( round % 2 )); then a=$(measure $PID_A "$ua" "$script" "$conns"); b=$(measure $PID_B "$ub" "$script" "$conns")
    else b=$(measure $PID_B "$ub" "$script" "$conns"); a=$(measure $PID_A "$ua" "$script" "$conns"); fi
    read -r ra ca <<<"$a"; read -r rb cb <<<"$b"
    echo "$name round=$round base=$ra new=$rb base_cpu_ns=$ca new_cpu_ns=$cb" | tee -a "$WORK/results"
  done
done

echo
echo "== summary: new/base throughput (1.00 = same; below 0.95 is a regression of more than 5%),"
echo "   and base/new server CPU per request (the same reading, less sensitive to the load of other processes)"
awk '
  function med(k, m,   x, y, t) {
    for (x = 1; x <= m; x++) s[x] = v[k, x]
    for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++) if (s[y] < s[x]) { t = s[x]; s[x] = s[y]; s[y] = t }
    return (m % 2) ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2
  }
  {
    split($3, a, "="); split($4, b, "="); split($5, ca, "="); split($6, cb, "=")
    k = $1; i = ++n[k]; names[k] = 1
    v[k, i] = (a[2] > 0) ? b[2] / a[2] : 0; line[k] = line[k] sprintf(" %.3f", v[k, i])
    v[k "cpu", i] = (cb[2] > 0) ? ca[2] / cb[2] : 0; cline[k] = cline[k] sprintf(" %.3f", v[k "cpu", i])
    bc[k] += ca[2]; nc[k] += cb[2]
  }
  END {
    for (k in names) {
      printf("%-18s throughput median %.3f (rounds:%s)\n", k, med(k, n[k]), line[k])
      printf("%-18s cpu/request median %.3f (rounds:%s); mean %.1f -> %.1f us\n", k, med(k "cpu", n[k]), cline[k], bc[k] / n[k] / 1000, nc[k] / n[k] / 1000)
    }
  }' "$WORK/results" | sort
