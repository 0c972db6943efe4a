# cognito-gate: multi-stage build. The final image has the installed wheels and nothing to
# build with; it runs as uid 10001 and is configured by GATE_* environment variables.
#   docker build -t cognito-gate .
#   docker build --build-arg EXTRAS=fast,demo -t cognito-gate-demo .   (adds moto for the demo)

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proxy ./proxy
# gmpy2 (the "fast" extra) speeds up SRP; every dependency ships binary wheels, so no compiler.
ARG EXTRAS=fast
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[${EXTRAS}]"

FROM python:3.11-slim
ARG EXTRAS=fast
LABEL org.opencontainers.image.title="cognito-gate" \
      org.opencontainers.image.description="Authenticating reverse proxy for Amazon Cognito user pools" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /wheels /wheels
# Templates and static files are package data inside the cognito-gate wheel. --no-index: only
# the wheels built above, already resolved, so there is nothing to pin here.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --no-index --find-links /wheels "cognito-gate[${EXTRAS}]" \
    && rm -rf /wheels \
    && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin gate
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GATE_LISTEN=0.0.0.0:8080 \
    GATE_METRICS_LISTEN=0.0.0.0:9090 \
    GATE_LOG_FORMAT=json
USER 10001:10001
EXPOSE 8080 9090
# Liveness only: /_auth/healthz touches nothing external. Reads the port from GATE_LISTEN.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('GATE_LISTEN', ':8080').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/_auth/healthz', timeout=2)"]
ENTRYPOINT ["cognito-gate"]
CMD ["serve"]
