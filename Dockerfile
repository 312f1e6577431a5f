# Multi-stage build of a static sift binary, run as a non-root user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sift ./cmd/sift

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sift /usr/local/bin/sift
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/sift"]
CMD ["serve", "--config", "/etc/sift/sift.yml"]
