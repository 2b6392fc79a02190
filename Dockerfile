# SMP's container image: /app/bin/smp, with the runbook's tools as links to
# it (/app/bin/recon-report, /app/bin/replay-webhooks, /app/bin/admin: smp
# runs the command named by argv[0]). deploy/k8s runs it; cmd/smp's
# TestContainerImage checks this file against the binary's commands.
#
#   docker build -t registry.smp.local/smp:latest --build-arg VERSION=$(git describe --always) .

# Build: a static binary (SQLite is pure Go), without the benchmarks
# (cmd/smp-bench is not in the image).
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/app/bin/smp ./cmd/smp \
 && cd /out/app/bin \
 && ln -s smp recon-report \
 && ln -s smp replay-webhooks \
 && ln -s smp admin \
 && mkdir -p /out/var/lib/smp

# Run: no shell, no package manager, a non-root user (65532, "nonroot").
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app/bin /app/bin
# The embedded default's data (smp serve without --mysql-dsn), writable by
# the user; production runs on MySQL and Redis.
COPY --from=build --chown=65532:65532 /out/var/lib/smp /var/lib/smp
ENV SMP_DATA_DIR=/var/lib/smp PATH=/app/bin
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/app/bin/smp"]
CMD ["serve", "--addr", "0.0.0.0:8080"]
