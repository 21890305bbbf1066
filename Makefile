# weft: `make demo` shows it working; `make test` runs every test tier (as root). See README.md.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/weftnet/weft/internal/version.Version=$(VERSION)
export WEFT_CACHE ?= $(HOME)/.cache/weft
BINS := weftd weft flannel weft-eni

.PHONY: all build deps tools test test-unit fuzz bench bench-alisim bench-alivpc demo demo-down clean fmt vet

all: build

# System packages the daemon and the tests use at run time; idempotent. systemd is there for systemd-analyze
# (TestSystemdAnalyzeVerify); installing it in a container starts nothing, as systemd is not PID 1 there.
deps:
	@need=""; for p in ip:iproute2 iptables:iptables nft:nftables conntrack:conntrack iperf3:iperf3 sockperf:sockperf ping:iputils-ping curl:curl sysctl:procps taskset:util-linux systemd-analyze:systemd; do \
	  command -v $${p%%:*} >/dev/null || need="$$need $${p#*:}"; done; \
	if [ -n "$$need" ]; then echo "installing:$$need"; \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq $$need >/dev/null; fi

build:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ ./cmd/weftd ./cmd/weft ./cmd/flannel ./cmd/weft-eni ./cmd/alisim

# Third-party binaries the tests start, cached under $(WEFT_CACHE) keyed by version.
tools:
	@tools/build.sh >/dev/null

TOOLS_BIN = $(shell tools/build.sh 2>/dev/null | tail -1)

test: deps build tools
	WEFT_TOOLS_BIN=$(TOOLS_BIN) $(GO) test -race -count=1 -timeout 40m ./...
	tools/fuzz.sh 5

# Every fuzz target for FUZZTIME seconds each (make test runs them 5 s each).
FUZZTIME ?= 30
fuzz:
	tools/fuzz.sh $(FUZZTIME)

# A 3-node weft cluster in network namespaces (needs only etcd and the CNI plugins, not kube-apiserver).
demo: deps build
	@bin/weft demo down >/dev/null 2>&1 || true
	WEFT_TOOLS_BIN=$$(tools/build.sh etcd cni | tail -1) bin/weft demo up

# weftd vs upstream flanneld side by side (memory, start time, iperf3, sockperf); not part of make test.
bench: deps build
	WEFT_TOOLS_BIN=$$(tools/build.sh etcd cni flannel | tail -1) $(GO) run ./bench/compare -reps 5 -secs 5

# The NetworkPolicy engine at scale with the real weftd (Kubernetes mode) against a real kube-apiserver: change ->
# kernel latency, table size, weftd's CPU and RSS, and the datapath cost of 100 policies; writes
# bench/policy/RESULTS.md. BENCH_QUICK=1: a short run (written to bin/, RESULTS.md untouched). Not part of make
# test. Whatever an interrupted run leaves (it cleans up itself on SIGINT/SIGTERM), its namespaces are removed here.
BENCH_POLICY_FLAGS ?= $(if $(BENCH_QUICK),-quick -o bin/bench-policy-quick.md,-o bench/policy/RESULTS.md)
.PHONY: bench-policy
bench-policy: deps build
	@tools/build.sh etcd k8s >/dev/null
	$(GO) build -o bin/bench-policy ./bench/policy
	@trap : INT TERM; p=pb$$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n'); rc=0; \
	WEFT_TOOLS_BIN=$$(tools/build.sh etcd k8s | tail -1) bin/bench-policy -prefix $$p $(BENCH_POLICY_FLAGS) || rc=$$?; \
	for ns in $$(ip netns list | awk '{print $$1}' | grep "^$$p-"); do ip netns del $$ns; done; exit $$rc

# ali-vpc route programming at scale: 1000 nodes, batched controller vs per-node, on alisim.
bench-alivpc:
	$(GO) run ./bench/alivpc -nodes 1000 -time-scale 0.02 -rate 20

# The eni backend on alisim's fabric: allocation latency (warm pool, cold node), -pods pods at once, API calls per
# action, pod-to-pod traffic against node-to-node; writes bench/eni/RESULTS.md. Not part of make test. Whatever
# an interrupted run leaves (it cleans up itself on SIGINT/SIGTERM), the namespaces of its prefix are removed here.
BENCH_ENI_FLAGS ?= -reps 5 -warm 40 -secs 5 -pods 100 -o bench/eni/RESULTS.md
.PHONY: bench-eni
bench-eni: deps build
	@tools/build.sh etcd k8s cni >/dev/null
	$(GO) build -o bin/bench-eni ./bench/eni
	@trap : INT TERM; p=eb$$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n'); rc=0; \
	WEFT_TOOLS_BIN=$$(tools/build.sh etcd k8s cni | tail -1) bin/bench-eni -prefix $$p $(BENCH_ENI_FLAGS) || rc=$$?; \
	for ns in $$(ip netns list | awk '{print $$1}' | grep "^$$p-"); do ip netns del $$ns; done; exit $$rc

# alisim's own capacity on loopback through the real SDK.
bench-alisim:
	$(GO) test -run XXX -bench Alisim -benchtime 5s ./cloud/aliyun

demo-down:
	bin/weft demo down

# The unit tier: any user, no root, no third-party binaries, no `make deps`; integration and privileged tests
# skip under -short (and only there).
test-unit:
	$(GO) test -race -count=1 -short ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf bin

# The container image from Dockerfile, with no Docker engine or registry: buildah (vfs storage, chroot isolation) on
# local Debian base images made with debootstrap, cached under ~/.cache/weft/images. See images/README.md.
.PHONY: image image-verify
image:
	@need=""; for p in buildah:buildah debootstrap:debootstrap file:file; do \
	  command -v $${p%%:*} >/dev/null || need="$$need $${p#*:}"; done; \
	if [ -n "$$need" ]; then echo "installing:$$need"; \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq $$need >/dev/null; fi
	VERSION=$(VERSION) images/build.sh

# Runs the built image's binaries in a buildah container, checks it is static and stamped, exports and reloads it.
image-verify:
	@command -v buildah >/dev/null && command -v file >/dev/null || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq buildah file >/dev/null; }
	VERSION=$(VERSION) images/verify.sh
