#!/usr/bin/env bash
# `make image-test`: on a fresh Debian machine (as root), install and configure podman, make
# the debian:bookworm-slim base if no registry can give it, build the image, then run the
# container smoke test (tests/image/image_smoke.py) and the compose test
# (tests/image/compose_smoke.py). Fails loudly; never skips.
#   deploy/image/image-test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/../.."

image=${GATE_TEST_IMAGE:-localhost/cognito-gate:test}
start=$(date +%s)
deploy/image/podman-setup.sh
deploy/image/base-image.sh
echo "image-test: podman build $image"
podman build --format docker --pull=never \
  --build-arg REVISION="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  -t "$image" . >/tmp/cognito-gate-image-build.log 2>&1 || {
  tail -50 /tmp/cognito-gate-image-build.log >&2
  echo "image-test: podman build failed (whole log: /tmp/cognito-gate-image-build.log)" >&2
  exit 1
}
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image-test: built $image, $((size / 1000000)) MB, $(($(date +%s) - start)) s so far"
podman image prune -f >/dev/null  # the previous build's layers, once untagged
GATE_TEST_IMAGE=$image .venv/bin/python -m pytest -p no:cacheprovider -q --timeout=300 \
  tests/image/image_smoke.py tests/image/compose_smoke.py "$@"
echo "image-test: done in $(($(date +%s) - start)) s"
