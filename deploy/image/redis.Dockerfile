# Redis from Debian's package on debian:bookworm-slim: the compose stack's Redis where the
# official image cannot be pulled (docker-compose.debian-redis.yml). Like the official image:
# data in /data, the server as the unprivileged redis user, no protected mode (the compose
# network is the boundary; never publish this port).
FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
    && mkdir /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/redis-entrypoint
LABEL org.opencontainers.image.title="cognito-gate-redis" \
      org.opencontainers.image.description="Debian's redis-server for the cognito-gate compose demo"
# The package makes the redis user; its uid is whatever Debian gave it.
# hadolint ignore=DL3066
USER redis
WORKDIR /data
VOLUME /data
EXPOSE 6379
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/redis-entrypoint"]
CMD ["redis-server"]
