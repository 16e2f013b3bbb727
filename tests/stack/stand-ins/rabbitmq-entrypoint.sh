#!/bin/sh
# rabbitmq stand-in entrypoint: the default user from the environment (as the
# official image), then the server as the rabbitmq user. The conf.d files
# are merged into one rabbitmq.conf in a folder of its own.
set -eu
if [ "${1:-}" = rabbitmq-server ]; then
    conf=/var/lib/rabbitmq/config
    mkdir -p "$conf"
    {
        echo "loopback_users.guest = false"
        echo "default_user = ${RABBITMQ_DEFAULT_USER:-guest}"
        echo "default_pass = ${RABBITMQ_DEFAULT_PASS:-guest}"
        for f in /etc/rabbitmq/conf.d/*.conf; do
            [ -f "$f" ] && cat "$f"
        done
    } >"$conf/rabbitmq.conf"
    chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
    export RABBITMQ_CONFIG_FILE="$conf/rabbitmq.conf"
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups /usr/lib/rabbitmq/bin/rabbitmq-server
fi
exec "$@"
