#!/bin/sh
# redis:7 stand-in entrypoint: `redis-server ARGS` runs as the redis user with
# protected mode off; any other command runs as given.
set -e
if [ "${1:-}" = redis-server ]; then
    shift
    exec setpriv --reuid=redis --regid=redis --init-groups redis-server --protected-mode no "$@"
fi
exec "$@"
