# Stand-in for rabbitmq:3.13-management, which no registry here serves:
# Debian 12's RabbitMQ server, whose package carries the management and
# prometheus plugins (compose mounts enabled_plugins to turn them on). As
# the official image does, it logs to stdout, reads
# RABBITMQ_DEFAULT_USER/RABBITMQ_DEFAULT_PASS, lets that user connect from
# other containers, and reads every file in /etc/rabbitmq/conf.d/.
FROM debian:bookworm
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends rabbitmq-server \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o rabbitmq -g rabbitmq /var/lib/rabbitmq /etc/rabbitmq/conf.d
COPY rabbitmq-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV RABBITMQ_LOGS=- \
    HOME=/var/lib/rabbitmq
EXPOSE 5672 15672 15692
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["rabbitmq-server"]
