#!/usr/bin/env bash
# Make `FROM debian:bookworm-slim` resolve without a registry: if podman has no such image,
# import one built with mmdebstrap from the Debian mirror (cached as a tarball, ~25 s to build).
# The result is equivalent to the official image, plus this machine's extra CA certificates in
# /usr/local/share/ca-certificates (picked up when a build installs ca-certificates), so builds
# behind a TLS-intercepting egress work. Such a base is for tests on this machine only.
#   deploy/image/base-image.sh [--rebuild]
set -euo pipefail

image=docker.io/library/debian:bookworm-slim
cache_dir=${GATE_IMAGE_CACHE:-/var/cache/cognito-gate}
tarball=$cache_dir/debian-bookworm-slim.tar
mirror=${GATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ "${1:-}" = --rebuild ]; then
  rm -f "$tarball"
  podman rmi -f "$image" >/dev/null 2>&1 || true
fi
if podman image exists "$image"; then
  exit 0
fi

if [ ! -s "$tarball" ]; then
  mkdir -p "$cache_dir"
  echo "base-image: building $tarball with mmdebstrap from $mirror"
  # The dpkg excludes are those of the official slim images (no man pages, docs, locales).
  mmdebstrap --variant=minbase --mode=root --format=tar \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --customize-hook='mkdir -p "$1/usr/local/share/ca-certificates"' \
    --customize-hook='if [ -d /usr/local/share/ca-certificates ]; then cp -r /usr/local/share/ca-certificates/. "$1/usr/local/share/ca-certificates/"; fi' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/*.log "$1"/tmp/*' \
    bookworm "$tarball.part" \
    "deb $mirror bookworm main" \
    "deb $mirror bookworm-updates main" \
    "deb ${mirror%/debian}/debian-security bookworm-security main"
  mv "$tarball.part" "$tarball"
fi
echo "base-image: importing $tarball as $image"
podman import --change 'CMD ["bash"]' "$tarball" "$image" >/dev/null
