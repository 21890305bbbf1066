// Package backend defines how weft's datapath backends plug into the daemon, and the registry that chooses one
// by the name in net-conf.json's Backend.Type.
//
// A backend is built once per daemon from Deps: the external interface, the subnet manager, and the coordinator
// for those that need a leader. RegisterNetwork sets up this node's side (devices, the lease with the backend's
// published data) and returns a Network. Its Outputs tell the daemon what to write for this node (lease,
// subnet.env, rule inputs); its Run loop reconciles the host (and, for cloud backends, the cloud) against the
// leases of all nodes until ctx ends. Every reconcile is idempotent and re-run on a periodic resync, so a restart
// converges from whatever state it finds. Optional behaviour is a named interface here (Readiness), never an
// anonymous type assertion. A backend without a per-node subnet registers with RegisterSubnetless and returns
// Outputs without Lease and Env.
package backend

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"k8s.io/client-go/kubernetes"

	"github.com/weftnet/weft/internal/coordination"
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
	// Outputs is what this node publishes and needs from the daemon, fixed once RegisterNetwork returned.
	Outputs() Outputs
	// Run reconciles until ctx ends. It must return promptly after ctx is done.
	Run(ctx context.Context)
}

// Outputs are a node's side of the backend as the daemon acts on it. The daemon writes subnet.env, installs the
// masquerade/forward rules, keeps the lease and completes the node exactly as they say, so a backend without a
// per-node subnet (pods on ENIs) has no special case anywhere.
type Outputs struct {
	// Lease is this node's lease, acquired by RegisterNetwork; nil when the backend keeps none. The daemon
	// renews and re-acquires it, blackholes its subnets (--ip-blackhole-route) and completes it.
	Lease *subnet.Lease
	// Env is the subnet.env to write (the daemon fills in IPMasq from --ip-masq); nil writes none.
	Env *subnet.Env
	// Traffic are the inputs of the masquerade and forward rules.
	Traffic Traffic
	// PublishesNodeStatus is set when the backend reports the node's network condition itself (ali-vpc: the
	// route leader sets NetworkUnavailable per node); the daemon then does not complete the lease.
	PublishesNodeStatus bool
}

// Traffic are the inputs of upstream's masquerade and forward rules, per family: the cluster network and this
// node's pod subnet. A family whose Network is invalid gets no rules.
type Traffic struct {
	Network, Subnet         netip.Prefix
	IPv6Network, IPv6Subnet netip.Prefix
	// NoMasquerade are destinations pods reach with their own source address (a cloud-routed backend's VPC).
	NoMasquerade []netip.Prefix
}

// SubnetOutputs are the outputs of a backend that leases one subnet per node, as flannel's do: subnet.env and
// the rules from the configuration and the lease, pods at the given MTU.
func SubnetOutputs(sc *subnet.Config, l *subnet.Lease, mtu int) Outputs {
	o := Outputs{Lease: l, Env: &subnet.Env{EnableIPv4: sc.EnableIPv4, EnableIPv6: sc.EnableIPv6, MTU: mtu}}
	if sc.EnableIPv4 {
		o.Env.Network, o.Env.Subnet = sc.Network, l.Subnet
		o.Traffic.Network, o.Traffic.Subnet = sc.Network, l.Subnet
	}
	if sc.EnableIPv6 {
		o.Env.IPv6Network, o.Env.IPv6Subnet = sc.IPv6Network, l.IPv6Subnet
		o.Traffic.IPv6Network, o.Traffic.IPv6Subnet = sc.IPv6Network, l.IPv6Subnet
	}
	return o
}

// Readiness is implemented by a Network whose node is not reachable as soon as RegisterNetwork returns (ali-vpc:
// until the node's VPC route is Available). The daemon holds /readyz (and completing the lease) until Ready, and
// follows it afterwards.
type Readiness interface {
	Ready() (ok bool, reason string)
}

// Backend builds this node's Network.
type Backend interface {
	// RegisterNetwork prepares the node for the backend described by config.Backend (and acquires its lease,
	// if it keeps one). It is retried on error, so it must be safe to call again.
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
	// Coordinator elects leaders and carries per-node status through the cluster store; nil when the daemon has
	// none to offer. Backends that need it fail in their constructor without it.
	Coordinator coordination.Coordinator
	// Kube is the Kubernetes API in Kubernetes mode (nil in etcd mode), for a backend that reads pods or writes
	// the node's status itself (eni); NodeName is this node's name there.
	Kube     kubernetes.Interface
	NodeName string
	// SetNodeNetworkUnavailable is --set-node-network-unavailable: a backend that publishes the node's status
	// writes the NetworkUnavailable condition only when it is set.
	SetNodeNetworkUnavailable bool
	// Policy is the NetworkPolicy engine when it runs (nil otherwise): a backend that answers CNI ADDs itself
	// (eni) waits on it before it answers, so that a pod starts with its rules in place.
	Policy PolicyWaiter
}

// PolicyWaiter returns once a pod's NetworkPolicy rules, for the addresses it is given, are in the kernel.
type PolicyWaiter interface {
	Ensure(ctx context.Context, namespace, name string, ips []netip.Addr) error
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

// RegisterSubnetless registers a backend that leases no per-node subnet (its net-conf.json needs no Network).
func RegisterSubnetless(name string, c Constructor) {
	subnet.DeclareSubnetless(name)
	Register(name, c)
}

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
