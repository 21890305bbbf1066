# weft's node image: weftd (also answering to /opt/bin/flanneld, so upstream's kube-flannel.yml works with only the
# image name changed), the weft CLI and the flannel CNI meta-plugin, on a small Debian base that carries the
# iptables and nft binaries the rule writers exec.
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/weftnet/weft/internal/version.Version=${VERSION}" \
      -o /out/ ./cmd/weftd ./cmd/weft ./cmd/flannel

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends iptables nftables iproute2 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/weftd /out/weft /out/flannel /opt/bin/
RUN ln -s /opt/bin/weftd /opt/bin/flanneld && ln -s /opt/bin/flannel /flannel
# weftd needs NET_ADMIN/NET_RAW (granted by the DaemonSet), not uid 0 for anything else.
ENTRYPOINT ["/opt/bin/weftd"]
