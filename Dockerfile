# mailzone in a container: `mailzone serve` as a non-root user, its state in a volume.
#
#   docker build -t mailzone .
#   docker run -d --name mailzone -p 127.0.0.1:8080:8080 \
#     -v mailzone-state:/var/lib/mailzone \
#     -v /etc/mailzone:/etc/mailzone:ro \
#     mailzone
#
# docs/operations.md ("Container") has the details: the first start prints the admin token
# (`docker logs mailzone`), secrets are mounted read-only files (or Docker/Podman secrets
# under /run/secrets/) named by the config, the state volume must be backed up.

# --- build ------------------------------------------------------------------------------
# The workspace needs Rust >= 1.94 (rust-version in Cargo.toml).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p mailzone \
    && strip --strip-debug target/release/mailzone \
    && install -D -m 0755 target/release/mailzone /out/usr/bin/mailzone

# --- run --------------------------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: the roots of the ACME client (HTTPS to the CA).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --uid 10001 --home-dir /var/lib/mailzone \
        --shell /usr/sbin/nologin mailzone \
    && install -d -o mailzone -g mailzone -m 0700 /var/lib/mailzone \
    && install -d -m 0755 /etc/mailzone
COPY --from=build /out/ /
COPY packaging/systemd/mailzone.toml.example /usr/share/doc/mailzone/examples/mailzone.toml

ENV MAILZONE_CONFIG=/etc/mailzone/mailzone.toml \
    MAILZONE_STATE_DIR=/var/lib/mailzone \
    MAILZONE_LOG=info
VOLUME ["/var/lib/mailzone"]
USER mailzone:mailzone
WORKDIR /var/lib/mailzone
EXPOSE 8080
# No HEALTHCHECK: the image has no HTTP client; probe GET /healthz from the orchestrator.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/mailzone"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
