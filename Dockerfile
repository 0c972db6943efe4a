# cognito-gate: the production image. Debian's Python 3.11 with the project in a venv (as
# Google's distroless python3-debian12 is built), multi-stage: the final image has Python, CA
# certificates and the installed venv, nothing to build with. It runs as uid 10001, works with a
# read-only root filesystem (it writes nothing; mount a tmpfs on /tmp if anything should), and
# is configured by GATE_* environment variables.
#   docker build -t cognito-gate .
#   make image-test        (builds with podman and runs the container smoke test)
# The same image runs the local Cognito double and the demo app (docker-compose.yml):
#   cognito-gate local-cognito ... / cognito-gate demo-app ...

# --- runtime: what the final image has besides the venv (shared by both stages, so the venv's
# interpreter is the very python3.11 it was built with).
FROM debian:bookworm-slim AS runtime
# Debian's stable packages, upgraded by rebuilding; pinning versions here would break the build
# at each point release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 ca-certificates \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
    && useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin gate

# --- build: the venv, from binary wheels only (no compiler here either).
FROM runtime AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11-venv \
    && rm -rf /var/lib/apt/lists/*
# pip trusts the system CA store (the same roots, plus any the base image adds).
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python3.11 -m venv /opt/cognito-gate
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proxy ./proxy
# "fast": gmpy2 for SRP (and every other speed-up the extra lists). Dependencies come as
# binary wheels only; the project itself is built from this directory. The venv's own pip and
# setuptools are removed afterwards: nothing installs at run time.
ARG EXTRAS=fast
# hadolint ignore=DL3013
RUN /opt/cognito-gate/bin/pip install --only-binary=:all: --no-binary=cognito-gate \
        "./[${EXTRAS}]" \
    && /opt/cognito-gate/bin/pip uninstall -y -q pip setuptools

# --- final
FROM runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="cognito-gate" \
      org.opencontainers.image.description="Authenticating reverse proxy for Amazon Cognito user pools" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
COPY --from=build /opt/cognito-gate /opt/cognito-gate
ENV PATH=/opt/cognito-gate/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GATE_LISTEN=0.0.0.0:8080 \
    GATE_METRICS_LISTEN=0.0.0.0:9090 \
    GATE_LOG_FORMAT=json
USER 10001:10001
EXPOSE 8080 9090
# SIGTERM starts the drain (readyz fails, in-flight requests finish within GATE_DRAIN_SECONDS),
# then the process exits 0.
STOPSIGNAL SIGTERM
# Liveness only: /_auth/healthz touches nothing external. Reads the port from GATE_LISTEN.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; port = os.environ.get('GATE_LISTEN', ':8080').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/_auth/healthz', timeout=2)"]
ENTRYPOINT ["cognito-gate"]
CMD ["serve"]
