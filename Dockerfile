# weft's node image: weftd (also answering to /opt/bin/flanneld, so upstream's kube-flannel.yml works with only the
# image name changed), the weft CLI, the eni backend's CNI plugin weft-eni and the flannel CNI meta-plugin (also at /flannel, which kube-flannel.yml's
# init container copies into /opt/cni/bin), on a small Debian base that carries the iptables and nft binaries the
# rule writers exec.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t weft .     (or buildah bud, same args)
#
# The base images are build args so that `make image` (images/build.sh) can build this same file with no registry,
# on local images made with debootstrap; see images/README.md.
ARG BUILDER_IMAGE=golang:1.26-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

# The build stage runs on the build machine's platform and cross-compiles (static Go needs nothing else), so a
# multi-platform build (docker buildx --platform linux/amd64,linux/arm64) emulates nothing but the base's apt step.
FROM --platform=${BUILDPLATFORM} ${BUILDER_IMAGE} AS build
# Nothing in the build needs root: compile as an unprivileged uid with its own GOPATH and caches.
RUN mkdir -p /src /out /home/build && chown 65532:65532 /src /out /home/build
USER 65532:65532
ENV HOME=/home/build GOPATH=/home/build/go GOCACHE=/home/build/.cache/go-build CGO_ENABLED=0
WORKDIR /src
# Module proxy settings pass through from the caller when given (empty means Go's defaults).
ARG GOPROXY
ARG GOSUMDB
ARG GOFLAGS
COPY --chown=65532:65532 go.mod go.sum ./
RUN --mount=type=cache,target=/home/build/go/pkg/mod,uid=65532,gid=65532 \
    go mod download
COPY --chown=65532:65532 . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
# Static binaries (CGO_ENABLED=0) for the target platform (empty TARGETOS/TARGETARCH: the builder's own), stamped with
# VERSION; the cache mounts only speed up rebuilds.
RUN --mount=type=cache,target=/home/build/go/pkg/mod,uid=65532,gid=65532 \
    --mount=type=cache,target=/home/build/.cache/go-build,uid=65532,gid=65532 \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w -X github.com/weftnet/weft/internal/version.Version=${VERSION}" \
      -o /out/ ./cmd/weftd ./cmd/weft ./cmd/flannel ./cmd/weft-eni

FROM ${BASE_IMAGE}
# The run-time tools weftd execs: debian:bookworm-slim lacks them and gets them from apt; a base that already has
# them (images/build.sh's local one) skips apt, so the offline build needs no Debian mirror. Then upstream's paths
# as symlinks, made here (before the binaries arrive) to keep the layer count down.
RUN set -e; pkgs="iptables nftables iproute2 ca-certificates"; \
    if ! dpkg -s $pkgs >/dev/null 2>&1; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs \
      && rm -rf /var/lib/apt/lists/*; \
    fi; \
    mkdir -p /opt/bin && ln -s /opt/bin/weftd /opt/bin/flanneld && ln -s /opt/bin/weft /opt/bin/install-conf \
    && ln -s /opt/bin/flannel /flannel
COPY --from=build --chown=0:0 /out/weftd /out/weft /out/flannel /out/weft-eni /opt/bin/
ARG VERSION=dev
LABEL org.opencontainers.image.title="weft" \
      org.opencontainers.image.description="flanneld-compatible pod-networking daemon (weftd), weft CLI and flannel CNI plugin" \
      org.opencontainers.image.source="https://github.com/weftnet/weft" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# The image deliberately runs as root (no USER): weftd programs routes, links, iptables/nft rules and sysctls, which
# need uid 0 with NET_ADMIN/NET_RAW (granted by the DaemonSet's securityContext, as upstream flannel's is) and write
# access to /run/flannel and the host's CNI directories. Only the build stage above runs unprivileged.
ENTRYPOINT ["/opt/bin/weftd"]
