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

(cd "$WORK" && ./benchkit issuer -n 20000 -role-arn "$ROLE" -bodies bodies.txt -url-file issuer.url) &
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

measure() { # label url script conns: prints requests/s; non-2xx answers abort the run
  local line
  line=$(BODIES="$WORK/bodies.txt" wrk -t2 -c"$4" -d"$DUR" -s "bench/$3" "$2" | grep '^RESULT')
  case $line in *" errors=0"*) ;; *) echo "$1: wrk saw errors: $line" >&2; exit 1 ;; esac
  echo "$line" | sed 's/.* rps=\([0-9.]*\).*/\1/'
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
    if (( round % 2 )); then a=$(measure base "$ua" "$script" "$conns"); b=$(measure new "$ub" "$script" "$conns")
    else b=$(measure new "$ub" "$script" "$conns"); a=$(measure base "$ua" "$script" "$conns"); fi
    echo "$name round=$round base=$a new=$b" | tee -a "$WORK/results"
  done
done

echo
echo "== summary: new/base throughput (1.00 = same; below 0.95 is a regression of more than 5%)"
awk '
  { split($3, a, "="); split($4, b, "="); r = (a[2] > 0) ? b[2] / a[2] : 0; v[$1, ++n[$1]] = r; line[$1] = line[$1] sprintf(" %.3f", r); names[$1] = 1 }
  END {
    for (k in names) {
      m = n[k]
      for (x = 1; x <= m; x++) s[x] = v[k, x]
      for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++) if (s[y] < s[x]) { t = s[x]; s[x] = s[y]; s[y] = t }
      med = (m % 2) ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2
      printf("%-20s median %.3f  (rounds:%s)\n", k, med, line[k])
    }
  }' "$WORK/results" | sort
