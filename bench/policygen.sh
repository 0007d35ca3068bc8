#!/usr/bin/env bash
# bench/policygen.sh: `keyless policy generate` on 1,000,000 events (issue 16).
#
# Data (bench/policygen, cached in $PG_DATA): the 2,900 real events of the
# Invictus dataset replicated as the calls of 4,000 CI sessions (distinct
# access key ids, session ARNs, 20 roles, 200 subjects), plus the
# AssumeRoleWithWebIdentity exchange of each session, as keyless records
# it; one NDJSON file per size. The sessions, roles and subjects are the
# same at every size: what grows is the events, so peak RSS must not.
#
# Timing: page cache warmed by one discarded read, then best of RUNS runs of
#   keyless policy generate FILE --by subject --output json
# (and --by role on the largest size); peak RSS from /usr/bin/time. The
# script fails unless every run of one size writes the same policies.
#
#   bench/policygen.sh                      # 250,000 and 1,000,000 events
#   SIZES="1000000" RUNS=1 bench/policygen.sh
#   KEYLESS_BIN=/path/to/keyless bench/policygen.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PG_DATA=${PG_DATA:-/var/tmp/keyless-policygen}
SIZES=${SIZES:-250000 1000000}
RUNS=${RUNS:-3}
TARGET=${TARGET:-3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/keyless-policygen-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p bench/results "$PG_DATA"
REPORT=bench/results/policygen-$(date -u +%Y%m%dT%H%MZ).md

for tool in go jq bc /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing required tool: $tool" >&2; exit 1; }
done

echo "== build" >&2
KL=${KEYLESS_BIN:-$WORK/keyless}
[ -n "${KEYLESS_BIN:-}" ] || go build -o "$WORK/keyless" ./cmd/keyless
go build -o "$WORK/pgdata" ./bench/policygen

# measure OUT CMD: runs CMD (stdout to OUT) best of RUNS; sets SECS, RSS_MB
# and SUM (the policies' checksum, the same on every run).
measure() {
  local out=$1 cmd=$2 best="" rss=0 s e t m sum
  SUM=""
  for ((i = 0; i < RUNS; i++)); do
    s=$(date +%s.%N)
    if ! /usr/bin/time -f '%M' -o "$WORK/rss" bash -c "$cmd" >"$out" 2>"$WORK/stderr"; then
      echo "FAILED: $cmd" >&2; cat "$WORK/stderr" >&2; exit 1
    fi
    e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc -l)
    m=$(tail -1 "$WORK/rss")
    [ "$m" -gt "$rss" ] && rss=$m
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
    sum=$(jq -c '[.policies[] | {role, binding, policy}]' "$out" | sha256sum | cut -c1-16)
    if [ -n "$SUM" ] && [ "$sum" != "$SUM" ]; then
      echo "MISMATCH: two runs of $cmd wrote different policies" >&2; exit 1
    fi
    SUM=$sum
  done
  SECS=$(printf '%.3f' "$best")
  RSS_MB=$((rss / 1024))
}

{
  echo "## keyless policy generate — $(date -u +%Y-%m-%d)"
  echo
  echo "Machine: $(nproc) cores (load average $(cut -d" " -f1 /proc/loadavg) at the start), $(awk '/MemTotal/ {printf "%.0f GB", $2/1e6}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(go version | cut -d' ' -f3)."
  echo "Data: Invictus events replicated as 4,000 CI sessions of 20 roles and 200 subjects, plus their exchanges (NDJSON). Warm page cache, best of $RUNS. Target: 1,000,000 events in <= ${TARGET} s, RSS flat."
  echo
  echo "| events | MB | --by | s | events/s | MB/s | peak RSS MB | policies | within ${TARGET} s |"
  echo "|---:|---:|---|---:|---:|---:|---:|---:|---|"
} >"$REPORT"

for n in $SIZES; do
  f=$PG_DATA/pg-$n.ndjson
  if [ ! -s "$f.done" ]; then
    echo "== data: $n events -> $f" >&2
    "$WORK/pgdata" -events "$n" -out "$f"
    echo ok >"$f.done"
  fi
  bytes=$(stat -c %s "$f")
  cat "$f" >/dev/null
  bys="subject"
  [ "$n" = "$(echo $SIZES | tr ' ' '\n' | tail -1)" ] && bys="subject role"
  for by in $bys; do
    measure "$WORK/out.json" "'$KL' policy generate '$f' --by $by --output json"
    events=$(jq .stats.events "$WORK/out.json")
    [ "$events" = "$n" ] || { echo "MISMATCH: $events events scanned, want $n" >&2; exit 1; }
    pols=$(jq '.policies | length' "$WORK/out.json")
    eps=$(echo "scale=0; $n / $SECS" | bc -l)
    mbs=$(echo "scale=1; $bytes / 1000000 / $SECS" | bc -l)
    ok=yes; [ "$(echo "$SECS > $TARGET" | bc -l)" = 1 ] && ok=NO
    [ "$n" -lt 1000000 ] && ok="(n/a)"
    echo "| $n | $((bytes / 1000000)) | $by | $SECS | $eps | $mbs | $RSS_MB | $pols | $ok |" >>"$REPORT"
    printf '%9s events  --by %-8s %7ss %10s events/s %7s MB/s %6s MB RSS %5s policies\n' "$n" "$by" "$SECS" "$eps" "$mbs" "$RSS_MB" "$pols" >&2
  done
done
# Peak RSS of the largest size over the smallest's, --by subject: flat is ~1.
first=$(grep -m1 '| subject |' "$REPORT" | awk -F'|' '{print $8}' | tr -d ' ')
lastrss=$(grep '| subject |' "$REPORT" | tail -1 | awk -F'|' '{print $8}' | tr -d ' ')
{
  echo
  echo "Peak RSS, largest over smallest size (--by subject): $lastrss / $first MB = $(echo "scale=2; $lastrss / $first" | bc -l)."
} >>"$REPORT"
echo >&2
cat "$REPORT"
echo "(also in $REPORT)" >&2
