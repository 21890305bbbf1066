#!/usr/bin/env bash
# build.sh [NAME...]: builds the real third-party components weft's tests start (etcd, kube-apiserver,
# kube-controller-manager, the reference CNI plugins, cnitool, upstream flanneld and its CNI meta-plugin) into a
# cache keyed by version, so a second run costs nothing. Prints the bin directory on stdout at the end.
#   WEFT_CACHE   cache root (default $HOME/.cache/weft)
# Idempotent: a binary already in the cache is not rebuilt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${WEFT_CACHE:-$HOME/.cache/weft}
ETCD_VER=v3.6.8
K8S_VER=v1.37.2
CNI_VER=v1.9.1
CNITOOL_VER=v1.3.1
FLANNEL_VER=v0.28.10
FLANNEL_CNI_VER=v0.9.1 # github.com/flannel-io/cni-plugin is not served by the proxy; the in-tree copy has the same contract
bin=$cache/tools/bin-etcd$ETCD_VER-k8s$K8S_VER-cni$CNI_VER-flannel$FLANNEL_VER
mkdir -p "$bin"

have() { [ -x "$bin/$1" ]; }
log() { echo "tools: $*" >&2; }

etcd() {
	have etcd && have etcdctl && return
	log "building etcd $ETCD_VER"
	(cd "$here/etcd" && go build -trimpath -o "$bin/etcd" go.etcd.io/etcd/server/v3 &&
		go build -trimpath -o "$bin/etcdctl" go.etcd.io/etcd/etcdctl/v3)
}

k8s() {
	have kube-apiserver && have kube-controller-manager && return
	log "building kube-apiserver and kube-controller-manager $K8S_VER (about 6 minutes cold)"
	local ld="-X k8s.io/component-base/version.gitVersion=$K8S_VER"
	(cd "$here/k8s" && go build -trimpath -ldflags "$ld" -o "$bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver &&
		go build -trimpath -ldflags "$ld" -o "$bin/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager)
}

cni() {
	local p
	for p in main/bridge ipam/host-local main/loopback meta/portmap meta/bandwidth main/ptp; do
		have "$(basename $p)" || { log "building CNI $p $CNI_VER"; GOBIN=$bin go install "github.com/containernetworking/plugins/plugins/$p@$CNI_VER"; }
	done
	have cnitool || GOBIN=$bin go install "github.com/containernetworking/cni/cnitool@$CNITOOL_VER"
	# Upstream's flannel CNI meta-plugin, kept under another name so it never shadows weft's own `flannel`.
	if ! have flannel-upstream-cni; then
		local t; t=$(mktemp -d)
		GOBIN=$t go install "github.com/containernetworking/plugins/plugins/meta/flannel@$FLANNEL_CNI_VER"
		mv "$t/flannel" "$bin/flannel-upstream-cni"; rmdir "$t"
	fi
}

flannel() {
	have flanneld && return
	log "building upstream flanneld $FLANNEL_VER"
	(cd "$here/flannel" && go build -trimpath -ldflags "-X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_VER" \
		-o "$bin/flanneld" github.com/flannel-io/flannel)
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(etcd cni flannel k8s)
for t in "${targets[@]}"; do "$t"; done
echo "$bin"
