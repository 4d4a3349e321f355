#!/usr/bin/env bash
# install.sh installs a locked-run release: it downloads the archive for
# this OS and CPU and the release's checksums.txt, checks the archive's
# SHA-256, and only then puts the binary in the install directory. The
# GitHub Action (action.yml) runs it; it works anywhere with bash, curl and
# sha256sum or shasum.
#
#   LOCKED_RUN_VERSION=v0.1.0 ./install.sh
#
# Environment:
#   LOCKED_RUN_VERSION      release tag to install, e.g. v0.1.0 (required)
#   LOCKED_RUN_BASE_URL     where release tags live (default: the project's
#                           GitHub releases); file:// URLs work
#   LOCKED_RUN_INSTALL_DIR  where to put the binary (default: $RUNNER_TEMP/
#                           locked-run/bin in GitHub Actions, else ~/.local/bin)
#   LOCKED_RUN_OS, LOCKED_RUN_ARCH  override the detected linux|darwin, amd64|arm64
#   GITHUB_PATH             when set (GitHub Actions), the install directory is
#                           added to it, so later steps find locked-run on PATH
set -euo pipefail

die() {
	echo "install locked-run: $*" >&2
	exit 1
}

version=${LOCKED_RUN_VERSION:-}
[[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]*)?$ ]] ||
	die "LOCKED_RUN_VERSION=\"$version\": give a release tag such as v0.1.0"

os=${LOCKED_RUN_OS:-$(uname -s)}
case $os in
Linux | linux) os=linux ;;
Darwin | darwin) os=darwin ;;
*) die "no release for $os: locked-run runs on Linux and macOS (see README, Platforms)" ;;
esac
arch=${LOCKED_RUN_ARCH:-$(uname -m)}
case $arch in
x86_64 | amd64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) die "no release for CPU $arch: releases are for amd64 and arm64; build from source with go install" ;;
esac

base=${LOCKED_RUN_BASE_URL:-https://github.com/locked-run/locked-run/releases/download}/$version
archive=locked-run_${version#v}_${os}_${arch}.tar.gz
if [[ -n ${LOCKED_RUN_INSTALL_DIR:-} ]]; then
	dir=$LOCKED_RUN_INSTALL_DIR
elif [[ -n ${RUNNER_TEMP:-} ]]; then
	dir=$RUNNER_TEMP/locked-run/bin
else
	dir=$HOME/.local/bin
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fetch() {
	curl --fail --silent --show-error --location --retry 3 --output "$2" "$1" ||
		die "download $1 failed"
}
fetch "$base/checksums.txt" "$tmp/checksums.txt"
fetch "$base/$archive" "$tmp/$archive"

# checksums.txt lines are "HASH  NAME" (sha256sum's format).
want=$(awk -v name="$archive" '$2 == name || $2 == "*" name { print $1; exit }' "$tmp/checksums.txt")
[[ $want =~ ^[0-9a-f]{64}$ ]] || die "$archive is not listed in $base/checksums.txt"
if command -v sha256sum >/dev/null; then
	got=$(sha256sum "$tmp/$archive")
else
	got=$(shasum -a 256 "$tmp/$archive")
fi
got=${got%% *}
[[ $got == "$want" ]] ||
	die "checksum mismatch for $archive: checksums.txt says $want, the download is $got; nothing installed"

tar -xzf "$tmp/$archive" -C "$tmp" locked-run || die "$archive has no locked-run binary"
mkdir -p "$dir"
install -m 0755 "$tmp/locked-run" "$dir/locked-run"
if [[ -n ${GITHUB_PATH:-} ]]; then
	echo "$dir" >>"$GITHUB_PATH"
fi
echo "installed $("$dir/locked-run" --version | head -n 1) in $dir" >&2
