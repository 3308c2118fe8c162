#!/bin/sh
# Install tf-lock-reaper from a release, checked against its SHA256SUMS.
#
#   curl -fsSL https://github.com/tf-lock-reaper/tf-lock-reaper/releases/latest/download/install.sh | sh
#
# Settings (environment):
#   TF_LOCK_REAPER_VERSION      the version to install, e.g. 0.2.0 (default: the latest release)
#   TF_LOCK_REAPER_BASE_URL     where releases are (default: the repository's releases page);
#                               files at <base>/download/v<version>/<file> and
#                               <base>/latest/download/<file>, GitHub's layout, so a mirror or an
#                               air-gapped copy works the same
#   TF_LOCK_REAPER_INSTALL_DIR  where the binary goes (default: /usr/local/bin as root,
#                               ~/.local/bin otherwise)
#
# A checksum mismatch, a missing version or an unsupported platform each end
# with one line on stderr and a non-zero exit, with nothing installed.
# POSIX sh (tested under dash).

set -eu

# The repository, written once in Cargo.toml (`repository`); a test keeps this line equal to it.
REPOSITORY="https://github.com/tf-lock-reaper/tf-lock-reaper"

say() { printf 'tf-lock-reaper install: %s\n' "$*" >&2; }
fail() {
  say "$*"
  exit 1
}

base="${TF_LOCK_REAPER_BASE_URL:-$REPOSITORY/releases}"
base="${base%/}"
version="${TF_LOCK_REAPER_VERSION:-latest}"
version="${version#v}"

case "$(uname -s)" in
  Linux) os=unknown-linux-musl ;;
  Darwin) os=apple-darwin ;;
  *) fail "unsupported operating system $(uname -s): releases are built for Linux and macOS; build from source with \`cargo install tf-lock-reaper\`" ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=x86_64 ;;
  aarch64 | arm64) arch=aarch64 ;;
  *) fail "unsupported architecture $(uname -m): releases are built for x86_64 and aarch64; build from source with \`cargo install tf-lock-reaper\`" ;;
esac
archive="tf-lock-reaper-$arch-$os.tar.gz"

if [ "$version" = latest ]; then
  url="$base/latest/download"
else
  url="$base/download/v$version"
fi

if [ -n "${TF_LOCK_REAPER_INSTALL_DIR:-}" ]; then
  dir="$TF_LOCK_REAPER_INSTALL_DIR"
elif [ "$(id -u)" = 0 ]; then
  dir=/usr/local/bin
else
  dir="$HOME/.local/bin"
fi

if command -v curl >/dev/null 2>&1; then
  fetch() { curl -fsL --retry 3 --connect-timeout 10 --max-time 300 -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget -q --tries=3 --timeout=60 -O "$2" "$1"; }
else
  fail "neither curl nor wget is installed: install one of them"
fi
if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
  fail "neither sha256sum nor shasum is installed: the download cannot be checked"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT INT TERM

fetch "$url/SHA256SUMS" "$tmp/SHA256SUMS" ||
  fail "cannot download $url/SHA256SUMS: version $version is not published there (check TF_LOCK_REAPER_VERSION and TF_LOCK_REAPER_BASE_URL)"
expected="$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1 }' "$tmp/SHA256SUMS")"
[ -n "$expected" ] || fail "version $version has no $archive (no build for this platform in its SHA256SUMS)"
fetch "$url/$archive" "$tmp/$archive" || fail "cannot download $url/$archive"
actual="$(sha256 "$tmp/$archive")"
[ "$actual" = "$expected" ] ||
  fail "$archive does not match SHA256SUMS (expected $expected, got $actual): not installed; the download was damaged or tampered with"

mkdir -p "$tmp/unpacked"
tar -xzf "$tmp/$archive" -C "$tmp/unpacked" || fail "cannot unpack $archive"
[ -f "$tmp/unpacked/tf-lock-reaper" ] || fail "$archive holds no tf-lock-reaper binary"
mkdir -p "$dir" || fail "cannot create $dir (set TF_LOCK_REAPER_INSTALL_DIR)"
# Into place in one rename, so a running copy is never half written.
cp "$tmp/unpacked/tf-lock-reaper" "$dir/.tf-lock-reaper.new" || fail "cannot write to $dir (set TF_LOCK_REAPER_INSTALL_DIR)"
chmod 0755 "$dir/.tf-lock-reaper.new"
mv -f "$dir/.tf-lock-reaper.new" "$dir/tf-lock-reaper"
say "installed $("$dir/tf-lock-reaper" --version) into $dir"
case ":$PATH:" in
  *":$dir:"*) ;;
  *) say "$dir is not on PATH: add it, e.g. export PATH=\"$dir:\$PATH\"" ;;
esac
