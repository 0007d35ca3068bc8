#!/usr/bin/env bash
# release-check.sh: run the release build for every target, then prove it
# reproducible: rebuild one target from a copy of the tree at another path,
# with an empty build cache, and compare the checksums.
#
#   scripts/release-check.sh [-t OS/ARCH] [VERSION]
#
# -t picks the target rebuilt (default linux/amd64); VERSION defaults to
# v0.0.0-check. Building all four targets once with the normal cache and
# only one a second time from scratch keeps this to about one cold build
# per target plus one.
set -euo pipefail

again=linux/amd64
if [[ ${1:-} == -t ]]; then
  again=$2
  shift 2
fi
version=${1:-v0.0.0-check}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/keyless-release-check.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

commit=$(git -C "$root" rev-parse HEAD)
epoch=$(git -C "$root" log -1 --format=%ct HEAD)
start=$SECONDS

echo "== release build, every target (normal build cache)"
# --allow-dirty: this checks reproducibility, not release hygiene; CI runs
# on a clean clone anyway.
"$root/scripts/release.sh" --allow-dirty -o "$work/first" "$version"

echo "== second build of $again: another path, empty GOCACHE, no .git"
mkdir -p "$work/copy"
# The files of the work tree as git sees them: tracked and untracked but
# not ignored (build outputs and data dirs stay out).
(
  cd "$root"
  git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [[ -f $f ]] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -
) | tar -xf - -C "$work/copy"
GOCACHE="$work/gocache" KEYLESS_COMMIT="$commit" SOURCE_DATE_EPOCH="$epoch" \
  "$work/copy/scripts/release.sh" -o "$work/second" -t "$again" "$version"

name="keyless_${version}_${again%/*}_${again#*/}"
first=$(grep "  $name\$" "$work/first/SHA256SUMS" || true)
second=$(grep "  $name\$" "$work/second/SHA256SUMS" || true)
if [[ -z $first || $first != "$second" ]]; then
  echo "NOT REPRODUCIBLE: $name"
  echo "  first:  $first"
  echo "  second: $second"
  exit 1
fi
echo "== reproducible: $first ($((SECONDS - start)) s)"
