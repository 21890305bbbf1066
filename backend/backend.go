// Package backend defines how weft's datapath backends plug into the daemon, and the registry that chooses one
// by the name in net-conf.json's Backend.Type.
//
// A backend is built once per daemon from the external interface and the subnet manager. RegisterNetwork sets up
// this node's side (devices, the lease with the backend's published data) and returns a Network whose Run loop
// reconciles the host (and, for cloud backends, the cloud) against the leases of all nodes until ctx ends. Every
// reconcile is idempotent and re-run on a periodic resync, so a restart converges from whatever state it finds.
// Backends without a per-node subnet (eni) return a Network whose Lease has no Subnet.
package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/subnet"
)

// ExternalInterface is the interface pod traffic leaves the node on, and the addresses other nodes use.
type ExternalInterface struct {
	Iface     *net.Interface
	IfaceAddr netip.Addr // IPv4 address on Iface (invalid if none)
	IfaceV6   netip.Addr // IPv6 address on Iface (invalid if none)
	ExtAddr   netip.Addr // public IPv4 published in the lease (--public-ip, else IfaceAddr)
	ExtV6Addr netip.Addr // public IPv6 (--public-ipv6, else IfaceV6)
}

// Network is a backend's running network on this node.
type Network interface {
	// Lease is this node's lease as acquired by RegisterNetwork.
	Lease() *subnet.Lease
	// MTU is the MTU pods should use (written to subnet.env as FLANNEL_MTU).
	MTU() int
	// Run reconciles until ctx ends. It must return promptly after ctx is done.
	Run(ctx context.Context)
}

// Backend builds this node's Network.
type Backend interface {
	// RegisterNetwork prepares the node for the backend described by config.Backend and acquires the lease.
	RegisterNetwork(ctx context.Context, config *subnet.Config) (Network, error)
}

// Deps are what a backend constructor receives.
type Deps struct {
	SubnetManager subnet.Manager
	ExtIface      *ExternalInterface
	// Hooks lets the daemon observe reconciles (metrics); may be nil.
	Hooks Hooks
	// Netlink is the handle for host changes; nil means the current network namespace. Tests pass
	// netlink.NewHandleAt(testNS).
	Netlink *netlink.Handle
	// Resync is the period of the full reconcile that repairs drift; 0 means DefaultResync.
	Resync time.Duration
	// Registerer receives backend-specific metrics (ali-vpc route-table usage); may be nil.
	Registerer prometheus.Registerer
}

// DefaultResync is how often a backend re-reads the kernel and repairs what drifted.
const DefaultResync = 30 * time.Second

// Handle returns d.Netlink, or a handle on the current network namespace.
func (d Deps) Handle() (*netlink.Handle, error) {
	if d.Netlink != nil {
		return d.Netlink, nil
	}
	return netlink.NewHandle()
}

// Hooks receives reconcile outcomes for metrics. Implementations must be cheap and concurrency safe.
type Hooks interface {
	Reconciled(backend string, seconds float64, err error)
}

// Constructor builds a backend.
type Constructor func(deps Deps) (Backend, error)

var (
	mu       sync.Mutex
	registry = map[string]Constructor{}
)

// Register makes a backend available under name. It panics on a duplicate name (a programming error).
func Register(name string, c Constructor) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[name]; dup {
		panic("backend: duplicate registration of " + name)
	}
	registry[name] = c
}

// New builds the backend registered under name.
func New(name string, deps Deps) (Backend, error) {
	mu.Lock()
	c, ok := registry[name]
	mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("Backend.Type %q: unknown backend, expected one of %v", name, Names())
	}
	return c(deps)
}

// Names lists registered backends, sorted.
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	n := make([]string, 0, len(registry))
	for k := range registry {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// TypeOf reads "Type" from a net-conf Backend object (case-insensitively, as upstream's JSON decoding does).
func TypeOf(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", nil
	}
	var b struct{ Type string }
	if err := json.Unmarshal(raw, &b); err != nil {
		return "", fmt.Errorf("Backend: %w", err)
	}
	return b.Type, nil
}
