# Stand-in for prom/prometheus, which no registry here serves: Debian 12's
# Prometheus server. Like the official image: the binary is the entrypoint
# (compose's `command:` gives its flags), it runs as nobody (65534) and keeps its
# data in /prometheus.
FROM debian:bookworm
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o nobody -g nogroup /prometheus
USER 65534:65534
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
