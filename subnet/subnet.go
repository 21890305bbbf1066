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
	// NodeName is the Kubernetes Node holding the lease (kube mode); empty in etcd mode, whose keys name subnets.
	NodeName string
}

// Node identifies the node holding the lease, for peer maps and per-node status: its Node name in Kubernetes
// mode, else its public address (etcd mode re-finds a node's lease by PublicIP, as upstream), else the lease key.
// Unlike Key, it stays the same when a node's subnet changes and never collides for leases without a subnet.
func (l *Lease) Node() string {
	switch {
	case l.NodeName != "":
		return l.NodeName
	case l.Attrs.PublicIP.IsValid():
		return l.Attrs.PublicIP.String()
	case l.Attrs.PublicIPv6.IsValid():
		return l.Attrs.PublicIPv6.String()
	}
	return l.Key()
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

// NodeAddresses is implemented by managers that know addresses an operator set on the node object itself
// (kube: the node-public-ip / node-public-ipv6 annotations), which replace --public-ip / --public-ipv6.
type NodeAddresses interface {
	NodePublicIPs(ctx context.Context) (v4, v6 string, err error)
}
