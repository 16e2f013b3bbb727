# Stand-in for pgvector/pgvector:pg15, which no registry here serves:
# Debian 12's PostgreSQL 15 with pgvector built from the source tarball that
# scripts/setup verifies (the build context holds it, as pgvector.orig.tar.gz).
# The entrypoint does what the official postgres image's does with
# POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB and /docker-entrypoint-initdb.d.
FROM debian:bookworm
# COPY, not ADD: the tarball is unpacked (and then deleted) in the build step.
# hadolint ignore=DL3010
COPY pgvector.orig.tar.gz /tmp/
# One layer: the build tools are removed in the step that installs them.
# No cluster is made at install time (the entrypoint makes one in PGDATA);
# OPTFLAGS="": no -march=native (as scripts/setup builds pgvector).
# hadolint ignore=DL3008
RUN mkdir -p /etc/postgresql-common /tmp/pgvector \
    && echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 postgresql-server-dev-15 gcc make libc6-dev \
    && tar -xzf /tmp/pgvector.orig.tar.gz -C /tmp/pgvector --strip-components=1 \
    && make -C /tmp/pgvector OPTFLAGS="" PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config \
    && make -C /tmp/pgvector OPTFLAGS="" PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config install \
    && apt-get purge -y --auto-remove postgresql-server-dev-15 gcc make libc6-dev \
    && rm -rf /tmp/pgvector /tmp/pgvector.orig.tar.gz /var/lib/apt/lists/* \
    && install -d -o postgres -g postgres /var/run/postgresql /docker-entrypoint-initdb.d
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PGDATA=/var/lib/postgresql/data \
    PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
