# Stand-in for the official Rust image (rust:<version>-bookworm), which no
# registry here serves: Debian 12, the C toolchain and tools the official
# image carries for crates that build C, and the Rust toolchain of
# rust-toolchain.toml, copied from this machine's rustup into the official
# image's layout (RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo,
# cargo/rustc/rustup on the PATH from /usr/local/cargo/bin).
# The build context (made by scripts/test-stack) holds rustup/ and cargo/.
FROM debian:bookworm
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev git make pkg-config \
    && rm -rf /var/lib/apt/lists/*
ARG RUST_VERSION
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUST_VERSION=${RUST_VERSION}
COPY rustup /usr/local/rustup
COPY cargo /usr/local/cargo
RUN rustc --version && cargo --version
