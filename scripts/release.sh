#!/usr/bin/env bash
# release.sh: build keyless's release binaries.
#
#   scripts/release.sh [-o DIR] [-t OS/ARCH]... [--allow-dirty] VERSION
#
# For each target (default: linux/amd64 linux/arm64 darwin/amd64
# darwin/arm64) it writes DIR/keyless_<VERSION>_<os>_<arch> (a plain
# executable; default DIR: dist), then DIR/SHA256SUMS in sha256sum's format
# ("<hex>  <file name>", sorted by name), the file the CI integrations
# verify downloads against. It prints the SHA-256 of SHA256SUMS, the value
# the integrations pin.
#
# The binaries are static (CGO_ENABLED=0) and reproducible: the same source,
# VERSION and Go toolchain give the same bytes, whatever the checkout path
# (-trimpath), the build cache, the machine or the time:
#   - version, commit and build date are set with -ldflags -X; the build
#     date is the commit's time, not the clock's;
#   - -buildid= empties the Go build ID; -buildvcs=false leaves Go's own
#     VCS stamp (and its "modified" flag) out, since the commit is already
#     set explicitly;
#   - GOFLAGS, GOAMD64, GOARM64 and CGO_ENABLED are fixed here, so the
#     caller's environment cannot change the output.
# Outside a git checkout (a copy of the tree), set KEYLESS_COMMIT and
# SOURCE_DATE_EPOCH (seconds) to what the checkout would give.
#
# A tree with uncommitted changes is refused (the binary would claim a
# commit it was not built from) unless --allow-dirty is given.
#
# scripts/release-check.sh verifies the reproducibility; tests use
# --package to build a stand-in main package through this same script.
set -euo pipefail

usage() {
  echo "usage: scripts/release.sh [-o DIR] [-t OS/ARCH]... [--allow-dirty] VERSION" >&2
  exit 2
}

out=dist
targets=()
allow_dirty=false
package=./cmd/keyless
while [[ $# -gt 0 ]]; do
  case $1 in
    -o) [[ $# -ge 2 ]] || usage; out=$2; shift 2 ;;
    -t) [[ $# -ge 2 ]] || usage; targets+=("$2"); shift 2 ;;
    --allow-dirty) allow_dirty=true; shift ;;
    --package) [[ $# -ge 2 ]] || usage; package=$2; shift 2 ;;
    -h | --help) usage ;;
    -*) echo "release.sh: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[[ $# -eq 1 ]] || usage
version=$1
if [[ ! $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]]; then
  echo "release.sh: VERSION must look like v1.2.3 (or v1.2.3-rc.1), not \"$version\"" >&2
  exit 2
fi
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64)
fi

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Commit and its time: from git, unless given (a copy of the tree has no .git).
commit=${KEYLESS_COMMIT:-}
epoch=${SOURCE_DATE_EPOCH:-}
if [[ -z $commit || -z $epoch ]]; then
  if ! git rev-parse --git-dir >/dev/null 2>&1; then
    echo "release.sh: not a git checkout: set KEYLESS_COMMIT and SOURCE_DATE_EPOCH" >&2
    exit 1
  fi
  commit=${commit:-$(git rev-parse HEAD)}
  epoch=${epoch:-$(git log -1 --format=%ct "$commit")}
  if [[ -n $(git status --porcelain --untracked-files=normal) ]] && ! $allow_dirty; then
    echo "release.sh: the work tree has uncommitted changes; commit them (or pass --allow-dirty for a test build)" >&2
    exit 1
  fi
fi
if [[ ! $epoch =~ ^[0-9]+$ ]]; then
  echo "release.sh: SOURCE_DATE_EPOCH must be seconds since 1970, not \"$epoch\"" >&2
  exit 1
fi
date=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$epoch" +%Y-%m-%dT%H:%M:%SZ)

sha256() {
  if command -v sha256sum >/dev/null; then sha256sum "$@"; else shasum -a 256 "$@"; fi
}

mkdir -p "$out"
echo "release.sh: keyless $version, commit $commit, date $date, $(go version | cut -d' ' -f3)" >&2
files=()
for target in "${targets[@]}"; do
  goos=${target%/*}
  goarch=${target#*/}
  case $target in
    linux/amd64 | linux/arm64 | darwin/amd64 | darwin/arm64) ;;
    *) echo "release.sh: unsupported target $target" >&2; exit 2 ;;
  esac
  name="keyless_${version}_${goos}_${goarch}"
  echo "release.sh: building $name" >&2
  env CGO_ENABLED=0 GOOS="$goos" GOARCH="$goarch" GOAMD64=v1 GOARM64=v8.0 GOFLAGS=-mod=readonly \
    go build -trimpath -buildvcs=false \
    -ldflags "-s -w -buildid= -X main.version=$version -X main.commit=$commit -X main.date=$date" \
    -o "$out/$name" "$package"
  files+=("$name")
done

# SHA256SUMS lists this run's binaries, sorted by name (byte order).
(
  cd "$out"
  # The names have no spaces (checked above), so word splitting is safe.
  # shellcheck disable=SC2046
  sha256 $(printf '%s\n' "${files[@]}" | LC_ALL=C sort) > SHA256SUMS
)
cat "$out/SHA256SUMS"
echo "release.sh: SHA256SUMS sha256 $(sha256 "$out/SHA256SUMS" | cut -d' ' -f1) (the value the integrations pin)" >&2
