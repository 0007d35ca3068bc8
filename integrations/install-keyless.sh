#!/bin/sh
# install-keyless: make a keyless binary available to a CI job. POSIX sh,
# curl or wget, sha256sum or shasum.
#
# Copies of this file, kept identical (integrations_test.go checks):
# circleci-orb/src/scripts/install_keyless.sh, github-action/install-keyless.sh
# and the before_script of gitlab/keyless-aws.yml.
#
# Environment:
#   KEYLESS_INSTALL_DIR        where to put the binary (created if missing;
#                              default $HOME/.local/bin)
#   KEYLESS_VERSION            the release to install, e.g. v0.1.0; empty: no
#                              release is pinned
#   KEYLESS_SHA256SUMS_SHA256  the SHA-256 of that release's SHA256SUMS file
#                              (scripts/release.sh prints it)
#   KEYLESS_RELEASE_URL        where releases are downloaded from:
#                              $KEYLESS_RELEASE_URL/$KEYLESS_VERSION/SHA256SUMS and
#                              .../keyless_<version>_<os>_<arch> (default
#                              https://github.com/keylessci/keyless/releases/download)
#   KEYLESS_BINARY_URL         instead of a release: one prebuilt binary ...
#   KEYLESS_BINARY_SHA256      ... and its SHA-256 (required with it)
#
# In order: a keyless already on PATH is used; else KEYLESS_BINARY_URL; else
# the pinned release, whose SHA256SUMS must have the pinned hash and whose
# binary must have the hash SHA256SUMS lists; else `go install` of the pinned
# version (checked by the Go checksum database), @latest when none is pinned.
# A checksum mismatch is fatal: it never falls back to anything.
#
# Prints the path of the keyless to run on stdout; messages go to stderr.
set -eu

say() { printf 'install-keyless: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

if command -v keyless >/dev/null 2>&1; then
  command -v keyless
  exit 0
fi

dir=${KEYLESS_INSTALL_DIR:-$HOME/.local/bin}
version=${KEYLESS_VERSION:-}
sums_sha=$(printf '%s' "${KEYLESS_SHA256SUMS_SHA256:-}" | tr 'A-F' 'a-f')
release_url=${KEYLESS_RELEASE_URL:-https://github.com/keylessci/keyless/releases/download}
binary_url=${KEYLESS_BINARY_URL:-}
binary_sha=$(printf '%s' "${KEYLESS_BINARY_SHA256:-}" | tr 'A-F' 'a-f')
mkdir -p "$dir"

if [ -n "$version" ] && ! printf '%s\n' "$version" | grep -Eq '^v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$'; then
  die "version \"$version\" is not a release version such as v0.1.0"
fi

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d' ' -f1
  else
    die "neither sha256sum nor shasum is available to verify the download"
  fi
}

# fetch URL FILE: 0 on success, 1 when the download failed.
fetch() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 --connect-timeout 10 -o "$2" "$1" || return 1
  elif command -v wget >/dev/null 2>&1; then
    wget -q -T 30 -O "$2" "$1" || return 1
  else
    say "neither curl nor wget is available"
    return 1
  fi
}

# verify FILE WANT WHAT: exit (never fall back) unless FILE hashes to WANT.
verify() {
  got=$(sha256_of "$1")
  if [ "$got" != "$2" ]; then
    rm -f "$1"
    die "checksum mismatch for $3: got sha256 $got, want $2; refusing to install it"
  fi
}

install_binary() {
  chmod 0755 "$1"
  mv -f "$1" "$dir/keyless"
  say "installed $2"
  printf '%s\n' "$dir/keyless"
  exit 0
}

tmp="$dir/.keyless.download.$$"
trap 'rm -f "$tmp" "$tmp.sums"' EXIT

if [ -n "$binary_url" ]; then
  printf '%s\n' "$binary_sha" | grep -Eq '^[0-9a-f]{64}$' ||
    die "a binary URL needs its SHA-256 (64 hex digits) to be verified"
  fetch "$binary_url" "$tmp" || die "could not download $binary_url"
  verify "$tmp" "$binary_sha" "$binary_url"
  install_binary "$tmp" "keyless from $binary_url"
fi

if [ -n "$version" ] && [ -n "$sums_sha" ]; then
  printf '%s\n' "$sums_sha" | grep -Eq '^[0-9a-f]{64}$' ||
    die "the SHA256SUMS checksum must be 64 hex digits"
  case $(uname -s) in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) os=unsupported ;;
  esac
  case $(uname -m) in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) arch=unsupported ;;
  esac
  name="keyless_${version}_${os}_${arch}"
  base="${release_url%/}/$version"
  if fetch "$base/SHA256SUMS" "$tmp.sums"; then
    verify "$tmp.sums" "$sums_sha" "$base/SHA256SUMS"
    want=$(awk -v n="$name" '{f=$2; sub(/^\*/, "", f)} f == n {print $1; exit}' "$tmp.sums" | tr 'A-F' 'a-f')
    if [ -z "$want" ]; then
      say "release $version has no binary for $os/$arch"
    elif fetch "$base/$name" "$tmp"; then
      verify "$tmp" "$want" "$base/$name"
      install_binary "$tmp" "keyless $version ($os/$arch) from $base"
    else
      say "could not download $base/$name"
    fi
  else
    say "could not download $base/SHA256SUMS"
  fi
elif [ -n "$version" ]; then
  say "version $version is pinned without the SHA-256 of its SHA256SUMS: not downloading unverified binaries"
fi

if command -v go >/dev/null 2>&1; then
  ref=${version:-latest}
  if [ -z "$version" ]; then
    say "no keyless release is pinned: building the latest with go install (pin a version and its checksum for repeatable jobs)"
  fi
  GOBIN="$dir" go install "github.com/keylessci/keyless/cmd/keyless@$ref" >&2 ||
    die "go install github.com/keylessci/keyless/cmd/keyless@$ref failed"
  say "installed keyless@$ref with go install"
  printf '%s\n' "$dir/keyless"
  exit 0
fi
die "keyless is not installed, no release binary could be installed and Go is not available: pin a release (version and its SHA256SUMS checksum), give a binary URL and its SHA-256, or use an image with Go or keyless"
