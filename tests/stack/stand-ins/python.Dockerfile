# Stand-in for python:3.12-slim-bookworm, which no registry here serves:
# Debian 12 with its python3 (3.11) and pip. Like the official image, the
# interpreter is not "externally managed" (PEP 668), so pip may install.
FROM debian:bookworm
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 python3-pip python3-venv unzip \
    && rm -rf /var/lib/apt/lists/* \
    && rm -f /usr/lib/python3*/EXTERNALLY-MANAGED \
    && ln -s /usr/bin/python3 /usr/local/bin/python
CMD ["python3"]
