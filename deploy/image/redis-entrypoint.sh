#!/bin/sh
# What the official redis image's entrypoint does for a bare `redis-server ...`: protected mode
# off (it would refuse every client not on loopback, since there is no password); the command's
# own options come after, so they win.
set -e
if [ "${1:-}" = redis-server ]; then
  shift
  exec redis-server --protected-mode no "$@"
fi
exec "$@"
