# Stand-in for gcr.io/distroless/cc-debian12 (targets `nonroot` and
# `debug-nonroot`), which no registry here serves. Like distroless: only the
# files of the packages it ships (base-files, netbase, tzdata, CA
# certificates, glibc, libgcc, libgomp, libstdc++, OpenSSL), no shell and no
# package manager; users root, nobody and nonroot (uid/gid 65532, home
# /home/nonroot), USER nonroot. The debug flavour adds busybox in /busybox
# (on the PATH, and its shell as the entrypoint), as distroless' does.
FROM debian:bookworm AS files
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends busybox-static ca-certificates libgomp1 libssl3 netbase tzdata \
    && rm -rf /var/lib/apt/lists/*
# Each package file is copied under its real path (Debian 12 merges /bin,
# /lib, /lib64 and /sbin into /usr; the symlinks are made first).
# hadolint ignore=SC2016
RUN set -eu; mkdir -p /out/usr/bin /out/usr/sbin /out/usr/lib /out/usr/lib64; \
    for d in bin sbin lib lib64; do ln -s "usr/$d" "/out/$d"; done; \
    for pkg in base-files netbase tzdata ca-certificates libc6 libssl3 libgcc-s1 libgomp1 libstdc++6; do \
        dpkg -L "$pkg"; \
    done | sort -u | while read -r f; do \
        if [ -d "$f" ] && [ ! -L "$f" ]; then continue; fi; \
        if [ ! -e "$f" ] && [ ! -L "$f" ]; then continue; fi; \
        dir=$(readlink -f "$(dirname "$f")"); mkdir -p "/out$dir"; \
        cp -a "$dir/$(basename "$f")" "/out$dir/"; \
    done; \
    mkdir -p /out/etc/ssl/certs /out/home/nonroot /out/root /out/tmp; \
    cp -a /etc/ssl/certs/. /out/etc/ssl/certs/; \
    printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
        'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
        'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >/out/etc/passwd; \
    printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' 'nonroot:x:65532:' >/out/etc/group; \
    chown 65532:65532 /out/home/nonroot; chmod 700 /out/root; chmod 1777 /out/tmp; \
    mkdir -p /busybox; cp /bin/busybox /busybox/busybox; \
    for applet in $(/busybox/busybox --list); do \
        [ "$applet" = busybox ] || ln -s busybox "/busybox/$applet"; \
    done

FROM scratch AS nonroot
COPY --from=files /out/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/nonroot

FROM nonroot AS debug-nonroot
COPY --from=files /busybox /busybox
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/busybox
ENTRYPOINT ["/busybox/sh"]
