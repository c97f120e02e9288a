# Multi-stage build: a static-ish binary (rustls, no OpenSSL) on a slim,
# non-root runtime image.
FROM rust:1-bookworm AS build
# the XSD validator links libxml2; its bindings are generated with libclang
RUN apt-get update && apt-get install -y --no-install-recommends libxml2-dev libclang-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p drehscheibe-cli \
 && strip target/release/drehscheibe target/release/drehscheibe-hub

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libxml2 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/drehscheibe --create-home drehscheibe
# `drehscheibe` runs `transform` itself and hands every other command to
# `drehscheibe-hub` beside it (ADR 0020): install both.
COPY --from=build /src/target/release/drehscheibe /src/target/release/drehscheibe-hub /usr/local/bin/
COPY rules /opt/drehscheibe/rules
COPY config /opt/drehscheibe/config
COPY schemas /opt/drehscheibe/schemas
# The example configuration keeps its data in ../data relative to itself.
RUN mkdir -p /opt/drehscheibe/data && chown drehscheibe /opt/drehscheibe/data
USER drehscheibe
WORKDIR /var/lib/drehscheibe
EXPOSE 8080
# Mount your own configuration at /etc/drehscheibe and data at /var/lib/drehscheibe.
ENTRYPOINT ["/usr/local/bin/drehscheibe"]
CMD ["serve", "--config", "/opt/drehscheibe/config/drehscheibe.toml", "--listen", "0.0.0.0:8080", "--log-format", "json"]
