# Build: a release binary with the templates and samples compiled in.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY templates ./templates
COPY static ./static
COPY samples ./samples
COPY tests ./tests
RUN cargo build --release --locked --bin eventsub-bridge

# Run: a small Debian image with CA roots for Twitch and rediss://.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/eventsub-bridge /usr/local/bin/eventsub-bridge
ENV BIND=0.0.0.0:8080
EXPOSE 8080
USER nobody
# SIGTERM drains (1001 to viewers, requests in flight finish) within 12 s:
# run with --stop-timeout 15 so that nothing is cut by the SIGKILL after it.
STOPSIGNAL SIGTERM
CMD ["eventsub-bridge", "serve"]
