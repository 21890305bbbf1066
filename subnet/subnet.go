// Package subnet holds weft's subnet-lease model and the wire formats it shares with upstream flanneld:
// net-conf.json (Config), leases and their etcd key names, and /run/flannel/subnet.env.
//
// A Manager hands out one lease per node (a per-node IPv4 and/or IPv6 subnet plus the attributes a backend
// publishes: public IP, backend type, backend data such as the VtepMAC) and reports the leases of the other nodes.
// Two managers implement it: subnet/etcd (leases as etcd keys, the upstream layout) and subnet/kube (Node podCIDRs
// and annotations). Backends consume leases and events and never talk to a store themselves.
package subnet

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"time"
)

// LeaseAttrs are the attributes a node publishes with its lease. The JSON form is the value stored under
// <prefix>/subnets/<key> in etcd and must stay byte-compatible with upstream flanneld.
type LeaseAttrs struct {
	PublicIP      netip.Addr      // IPv4 address other nodes reach this node on; invalid when IPv4 is off
	PublicIPv6    netip.Addr      // IPv6 address; invalid when IPv6 is off
	BackendType   string          // "vxlan", "host-gw", ...
	BackendData   json.RawMessage // backend specific, e.g. {"VNI":1,"VtepMAC":"..."}
	BackendV6Data json.RawMessage // backend specific, IPv6 side
}

// Lease is one node's claim on a subnet (and/or an IPv6 subnet).
type Lease struct {
	EnableIPv4 bool
	EnableIPv6 bool
	Subnet     netip.Prefix // IPv4 subnet, e.g. 10.244.3.0/24
	IPv6Subnet netip.Prefix // IPv6 subnet
	Attrs      LeaseAttrs
	Expiration time.Time // zero for a reservation or a lease with no expiry (kube mode)
	// Asof is the store revision the lease was read at (etcd mode); 0 when unknown.
	Asof int64
}

// ErrLeaseNotFound is returned (wrapped) when this node's lease is no longer in the store, e.g. by RenewLease
// after the lease expired or was deleted. The node must acquire a lease again.
var ErrLeaseNotFound = errors.New("lease not found in the store")

// Key returns the lease's name as upstream writes it under <prefix>/subnets: "10.244.3.0-24",
// "10.244.3.0-24&fc00::-64" in dual stack, or "fc00::-64" for an IPv6-only lease.
func (l *Lease) Key() string { return LeaseKey(l.Subnet, l.IPv6Subnet) }

// EventType tells whether a lease appeared (or changed) or went away.
type EventType int

const (
	EventAdded EventType = iota
	EventRemoved
)

func (t EventType) String() string {
	if t == EventRemoved {
		return "removed"
	}
	return "added"
}

// Event is a change to one lease.
type Event struct {
	Type  EventType
	Lease Lease
}

// Manager hands out this node's lease and reports everyone's. Implementations must be safe for concurrent use.
type Manager interface {
	// Name identifies the manager in logs and metrics ("etcd" or "kube").
	Name() string
	// GetNetworkConfig returns the validated cluster configuration (net-conf.json).
	GetNetworkConfig(ctx context.Context) (*Config, error)
	// PreviousLease returns the lease this node held before (etcd: the stored lease whose PublicIP matches
	// attrs; kube: this Node's annotations), or nil if there is none. Backends use it to keep published data
	// such as the VtepMAC across restarts.
	PreviousLease(ctx context.Context, attrs *LeaseAttrs) (*Lease, error)
	// AcquireLease obtains (or re-obtains) this node's lease with the given attributes.
	AcquireLease(ctx context.Context, attrs *LeaseAttrs) (*Lease, error)
	// RenewLease extends the lease's expiry; it updates l in place.
	RenewLease(ctx context.Context, l *Lease) error
	// WatchLease reports changes to this node's own lease until ctx ends: EventRemoved once when it expires or is
	// deleted, EventAdded when it (the same key) is written again.
	WatchLease(ctx context.Context, l *Lease, events chan<- []Event) error
	// WatchLeases first sends the current leases of all nodes as EventAdded (one batch, possibly empty), then
	// every change, until ctx ends.
	WatchLeases(ctx context.Context, events chan<- []Event) error
	// CompleteLease is called once the backend has set the node up (kube: NetworkUnavailable=False).
	CompleteLease(ctx context.Context, l *Lease) error
}

// LeaderElector is implemented by managers whose store can elect one leader among the nodes (an etcd election,
// a Kubernetes Lease). Cloud backends use it so that only one node writes shared cloud state.
type LeaderElector interface {
	// Lead blocks until this node leads the election called name (as id), then returns a context that ends when
	// leadership is lost or ctx ends.
	Lead(ctx context.Context, name, id string) (context.Context, error)
}

// RouteStatus is a node's cloud-route state as the leader sees it.
type RouteStatus struct {
	Routed bool
	Reason string // why not, e.g. RouteTableQuotaExceeded
}

// RouteStatusStore lets the leader publish each node's route status where that node (and operators) can read it.
// A status belongs to one incarnation of a lease: once the lease is removed, a status published for it never
// answers for a lease later taken with the same subnet.
type RouteStatusStore interface {
	PublishRouteStatus(ctx context.Context, l *Lease, st RouteStatus) error
	RouteStatus(ctx context.Context, l *Lease) (RouteStatus, bool, error)
	// ForgetRouteStatus drops the status of a removed lease.
	ForgetRouteStatus(ctx context.Context, l *Lease) error
}
