#!/usr/bin/env bash
# bench/query.sh: `keyless audit query` vs DuckDB (@duckdb/node-api) vs jq,
# side by side in one run on the same files (issue 15).
#
# Datasets (bench/benchkit querydata, cached in $QUERY_DATA):
#   ndjson    one NDJSON file of >= SIZE bytes
#   delivery  CloudTrail's S3 layout: gzipped {"Records":[...]} files of
#             300±100 events, >= SIZE bytes uncompressed
#   exports   gzipped {"Records":[...]} documents of 100,000 events each,
#             >= SIZE bytes uncompressed
# Queries:
#   Q1  fields @timestamp, eventName, userIdentity.arn | filter eventName like "AssumeRole"
#   Q2  stats count(*) by eventSource
# Each tool prints its result rows to a file; the script fails unless every
# tool returns the same number of Q1 rows and the same Q2 groups (and the
# generator's expected answers). Timing: page cache warmed by one discarded
# read of the dataset, then best of RUNS runs (a run longer than SLOW
# seconds is not repeated). jq runs on a subset (JQ_SUBSET bytes of NDJSON,
# the first 20% of the delivery files, 2 export documents); keyless runs on
# the same subset once to check jq's answers.
#
#   bench/query.sh                 # all datasets, SIZE=1GB
#   SIZE=300MB DATASETS=ndjson bench/query.sh
#   KEYLESS_BIN=/path/to/keyless RUNS=1 bench/query.sh
set -euo pipefail
cd "$(dirname "$0")/.."

QUERY_DATA=${QUERY_DATA:-/var/tmp/keyless-querydata}
SIZE=${SIZE:-1GB}
RUNS=${RUNS:-3}
SLOW=${SLOW:-30}
DATASETS=${DATASETS:-ndjson delivery exports}
JQ_SUBSET=${JQ_SUBSET:-200000000}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/keyless-query-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p bench/results "$QUERY_DATA"
REPORT=bench/results/query-$(date -u +%Y%m%dT%H%MZ).md

for tool in go node npm jq zcat /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing required tool: $tool" >&2; exit 1; }
done

# Disk: three datasets of SIZE each, two of them gzipped (~1/8).
avail=$(df -B1 --output=avail "$QUERY_DATA" | tail -1)
if [ ! -e "$QUERY_DATA/ndjson.manifest.json" ] && [ "$avail" -lt 8000000000 ]; then
  echo "only $((avail / 1000000)) MB free under $QUERY_DATA: SIZE=300MB instead of $SIZE" >&2
  SIZE=300MB
fi

echo "== build" >&2
KL=${KEYLESS_BIN:-$WORK/keyless} # KEYLESS_BIN: bench a given binary
[ -n "${KEYLESS_BIN:-}" ] || go build -o "$WORK/keyless" ./cmd/keyless
go build -o "$WORK/benchkit" ./bench/benchkit
if [ ! -d bench/duckdb/node_modules/@duckdb/node-api ]; then
  (cd bench/duckdb && npm ci --no-audit --no-fund >&2)
fi
DUCK="node bench/duckdb/query.mjs"

echo "== data ($SIZE per dataset in $QUERY_DATA)" >&2
"$WORK/benchkit" querydata -out "$QUERY_DATA" -size "$SIZE" -only "$(echo $DATASETS | tr ' ' ,)"

Q1_KL='fields @timestamp, eventName, userIdentity.arn | filter eventName like "AssumeRole"'
Q2_KL='stats count(*) by eventSource'
Q1_JQ='select(.eventName|contains("AssumeRole"))|{eventTime, eventName, arn: .userIdentity.arn}'
Q2_JQ='reduce inputs as $e ({}; .[$e.eventSource] += 1) | to_entries[] | {eventSource: .key, n: .value}'
Q2_JQ_RECORDS='reduce (inputs.Records[]) as $e ({}; .[$e.eventSource] += 1) | to_entries[] | {eventSource: .key, n: .value}'

# measure OUT CMD: runs CMD (stdout to OUT) best of RUNS; sets SECS and RSS_MB.
measure() {
  local out=$1 cmd=$2 best="" rss=0 s e t m
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
    [ "$(echo "$t > $SLOW" | bc -l)" = 1 ] && break
  done
  SECS=$(printf '%.3f' "$best")
  RSS_MB=$((rss / 1024))
}

# groups FILE: Q2 rows as sorted "eventSource<TAB>count" whatever the count
# column is called.
groups() {
  jq -r '[.eventSource, (to_entries | map(select(.key != "eventSource"))[0].value | tonumber | tostring)] | @tsv' "$1" | sort
}

mbs() { echo "scale=1; $1 / 1000000 / $2" | bc -l; }
rps() { echo "scale=0; $1 / $2" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }

check() { # check WHAT GOT WANT
  if [ "$2" != "$3" ]; then
    echo "MISMATCH: $1: got $2, want $3" >&2
    exit 1
  fi
}

{
  echo "## keyless audit query vs DuckDB vs jq — $(date -u +%Y-%m-%d)"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1e6}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(go version | cut -d' ' -f3); DuckDB $(node -p "require('./bench/duckdb/node_modules/@duckdb/node-api/package.json').version"); $(jq --version)."
  echo "Warm page cache, best of $RUNS (runs over ${SLOW}s once). MB = 10^6 bytes of uncompressed JSON. Logs Insights (the talk): 131.8 MB/s, 62,540 records/s."
  echo
  echo "| dataset | query | tool | s | MB/s | records/s | peak RSS MB | keyless speed-up |"
  echo "|---|---|---|---:|---:|---:|---:|---:|"
} >"$REPORT"

row() { # row DATASET QUERY TOOL SECS BYTES EVENTS RSS KLMBS
  local m r up
  m=$(mbs "$5" "$4"); r=$(rps "$6" "$4")
  if [ "$3" = keyless ]; then up="LI ×$(ratio "$m" 131.8)"; else up="×$(ratio "$8" "$m")"; fi
  echo "| $1 | $2 | $3 | $4 | $m | $r | $7 | $up |" >>"$REPORT"
  printf '%-9s %-3s %-28s %8ss %8s MB/s %10s rec/s %6s MB  %s\n' "$1" "$2" "$3" "$4" "$m" "$r" "$7" "$up" >&2
}

for ds in $DATASETS; do
  man=$QUERY_DATA/$ds.manifest.json
  bytes=$(jq .bytes "$man"); events=$(jq .events "$man")
  want_q1=$(jq .assumeRole "$man")
  jq -r '.bySource | to_entries[] | [.key, (.value|tostring)] | @tsv' "$man" | sort >"$WORK/want-q2"
  sub=$QUERY_DATA/jq-subset
  mkdir -p "$sub"
  # The subset cache is stale once its dataset was regenerated.
  [ "$sub/$ds.size" -nt "$man" ] || rm -f "$sub/$ds.size" "$sub/$ds.ndjson"
  case $ds in
  ndjson)
    src=$QUERY_DATA/ndjson/events.ndjson
    paths=$src
    [ -s "$sub/ndjson.ndjson" ] || head -c "$JQ_SUBSET" "$src" | sed '$d' >"$sub/ndjson.ndjson"
    jq_paths=$sub/ndjson.ndjson
    duck_from="read_json('$src', format='newline_delimited')"
    duck_tuned="read_json('$src', format='newline_delimited', columns={eventTime: 'VARCHAR', eventName: 'VARCHAR', eventSource: 'VARCHAR', userIdentity: 'JSON'})"
    duck_q1="SELECT eventTime, eventName, userIdentity.arn AS arn FROM $duck_from WHERE eventName LIKE '%AssumeRole%'"
    duck_q2="SELECT eventSource, count(*) AS n FROM $duck_from GROUP BY eventSource"
    duck_q1t="SELECT eventTime, eventName, json_extract_string(userIdentity, '\$.arn') AS arn FROM $duck_tuned WHERE eventName LIKE '%AssumeRole%'"
    duck_q2t="SELECT eventSource, count(*) AS n FROM $duck_tuned GROUP BY eventSource"
    jq_q1="jq -c '$Q1_JQ' $jq_paths"
    jq_q2="jq -c -n '$Q2_JQ' $jq_paths"
    ;;
  delivery | exports)
    if [ "$ds" = delivery ]; then
      glob="$QUERY_DATA/delivery/**/*.json.gz"; opts=""
      find "$QUERY_DATA/delivery" -name '*.json.gz' | sort >"$WORK/all"
      head -n $(($(wc -l <"$WORK/all") / 5)) "$WORK/all" >"$WORK/subset"
    else
      glob="$QUERY_DATA/exports/*.json.gz"; opts=", maximum_object_size=2000000000"
      find "$QUERY_DATA/exports" -name '*.json.gz' | sort | head -n 2 >"$WORK/subset"
    fi
    paths=$QUERY_DATA/$ds
    jq_paths=$(tr '\n' ' ' <"$WORK/subset")
    duck_from="(SELECT unnest(Records) AS r FROM read_json('$glob'$opts))"
    duck_tuned="(SELECT unnest(Records) AS r FROM read_json('$glob'$opts, columns={Records: 'STRUCT(eventTime VARCHAR, eventName VARCHAR, eventSource VARCHAR, userIdentity JSON)[]'}))"
    duck_q1="SELECT r.eventTime, r.eventName, r.userIdentity.arn AS arn FROM $duck_from WHERE r.eventName LIKE '%AssumeRole%'"
    duck_q2="SELECT r.eventSource AS eventSource, count(*) AS n FROM $duck_from GROUP BY r.eventSource"
    duck_q1t="SELECT r.eventTime, r.eventName, json_extract_string(r.userIdentity, '\$.arn') AS arn FROM $duck_tuned WHERE r.eventName LIKE '%AssumeRole%'"
    duck_q2t="SELECT r.eventSource AS eventSource, count(*) AS n FROM $duck_tuned GROUP BY r.eventSource"
    jq_q1="zcat $jq_paths | jq -c '.Records[]|$Q1_JQ'"
    jq_q2="zcat $jq_paths | jq -c -n '$Q2_JQ_RECORDS'"
    ;;
  esac
  # The subset's uncompressed bytes and events (cached).
  if [ ! -s "$sub/$ds.size" ]; then
    if [ "$ds" = ndjson ]; then
      echo "$(wc -c <"$jq_paths") $(wc -l <"$jq_paths")" >"$sub/$ds.size"
    else
      echo "$(zcat $jq_paths | wc -c) $(zcat $jq_paths | jq -n '[inputs.Records|length]|add')" >"$sub/$ds.size"
    fi
  fi
  read -r sub_bytes sub_events <"$sub/$ds.size"

  echo "== $ds: $events events, $bytes bytes; jq subset $sub_events events, $sub_bytes bytes" >&2
  find "$QUERY_DATA/$ds" -type f -exec cat {} + >/dev/null # warm the page cache

  for q in Q1 Q2; do
    if [ $q = Q1 ]; then klq=$Q1_KL; dq=$duck_q1; dqt=$duck_q1t; jqc=$jq_q1; else klq=$Q2_KL; dq=$duck_q2; dqt=$duck_q2t; jqc=$jq_q2; fi
    measure "$WORK/kl.out" "'$KL' audit query --output json '$klq' $paths"
    kl_secs=$SECS; kl_rss=$RSS_MB; kl_mbs=$(mbs "$bytes" "$SECS")
    measure "$WORK/duck.out" "$DUCK \"$dq\""
    d_secs=$SECS; d_rss=$RSS_MB
    measure "$WORK/duckt.out" "$DUCK \"$dqt\""
    dt_secs=$SECS; dt_rss=$RSS_MB
    measure "$WORK/jq.out" "$jqc"
    j_secs=$SECS; j_rss=$RSS_MB
    # keyless on jq's subset, once, to check jq's answer.
    RUNS=1 measure "$WORK/klsub.out" "'$KL' audit query --output json '$klq' $jq_paths"

    if [ $q = Q1 ]; then
      check "$ds Q1 keyless rows" "$(wc -l <"$WORK/kl.out")" "$want_q1"
      check "$ds Q1 DuckDB rows" "$(wc -l <"$WORK/duck.out")" "$want_q1"
      check "$ds Q1 DuckDB (columns=) rows" "$(wc -l <"$WORK/duckt.out")" "$want_q1"
      check "$ds Q1 jq rows (subset) vs keyless on the subset" "$(wc -l <"$WORK/jq.out")" "$(wc -l <"$WORK/klsub.out")"
    else
      want=$(cat "$WORK/want-q2")
      check "$ds Q2 keyless groups" "$(groups "$WORK/kl.out")" "$want"
      check "$ds Q2 DuckDB groups" "$(groups "$WORK/duck.out")" "$want"
      check "$ds Q2 DuckDB (columns=) groups" "$(groups "$WORK/duckt.out")" "$want"
      check "$ds Q2 jq groups (subset) vs keyless on the subset" "$(groups "$WORK/jq.out")" "$(groups "$WORK/klsub.out")"
    fi
    row "$ds" $q keyless "$kl_secs" "$bytes" "$events" "$kl_rss" "$kl_mbs"
    row "$ds" $q DuckDB "$d_secs" "$bytes" "$events" "$d_rss" "$kl_mbs"
    row "$ds" $q "DuckDB columns=" "$dt_secs" "$bytes" "$events" "$dt_rss" "$kl_mbs"
    row "$ds" $q "jq (subset)" "$j_secs" "$sub_bytes" "$sub_events" "$j_rss" "$kl_mbs"
  done
done
echo >&2
cat "$REPORT"
echo "(also in $REPORT)" >&2
