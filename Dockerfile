# syntax=docker/dockerfile:1
# The `skein` image: the one binary on distroless "cc" (glibc, libgcc, CA
# certificates; no shell, no package manager), running as uid 65532. The k8s/ manifests use
# ghcr.io/skein-project/skein:0.1.0:
#   docker build -t ghcr.io/skein-project/skein:0.1.0 .

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS builder
# --locked: build exactly the committed Cargo.lock (fails if it is stale).
ARG CARGO_BUILD_FLAGS=--locked
WORKDIR /src
# The whole workspace: cargo needs every member's manifest to resolve it.
# protox compiles the .proto files, so no protoc is needed.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release ${CARGO_BUILD_FLAGS} -p skein-node --bin skein \
    && install -D -m 0755 target/release/skein /out/skein

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="skein" \
      org.opencontainers.image.description="One PromQL view and long-term storage over many Prometheus servers" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/skein /usr/local/bin/skein
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# gRPC (StoreAPI, WAN gossip), HTTP (API, /metrics, probes), LAN gossip.
EXPOSE 10901/tcp 10902/tcp 7946/udp
ENTRYPOINT ["/usr/local/bin/skein"]
CMD ["node", "--config", "/etc/skein/config/skein.yaml"]
