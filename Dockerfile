# Multi-stage build of a static sift binary, run as a non-root user.
#
# Base images are pinned by digest, the tag kept for people. To move one:
#   docker buildx imagetools inspect golang:1.26-bookworm
# and put the new manifest-list digest after the '@'.
FROM golang:1.26-bookworm@sha256:9fdc884aacc3bec89b20ffc69f4bb369c78210e3e4f600387b5128b12c199f81 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sift ./cmd/sift
# The store's directory, made here: the final image has no shell to make it.
RUN mkdir -p /out/store && chmod 0700 /out/store

FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
COPY --from=build /out/sift /usr/local/bin/sift
# Owned by nonroot (65532), so that the SQLite store can be written with or
# without a volume; a named volume starts with this owner too.
COPY --from=build --chown=65532:65532 /out/store /var/lib/sift
USER nonroot:nonroot
WORKDIR /var/lib/sift
VOLUME ["/var/lib/sift"]
# 9184: /metrics, /healthz and /readyz (metrics.listen);
# 9185: the halt webhooks (halts.listen). See examples/sift.yml.
EXPOSE 9184 9185
# Distroless has no curl: sift asks its own health endpoint.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/sift", "healthcheck", "--url", "http://127.0.0.1:9184/healthz", "--timeout", "3s"]
ENTRYPOINT ["/usr/local/bin/sift"]
CMD ["serve", "--config", "/etc/sift/sift.yml"]
