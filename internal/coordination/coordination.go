// Package coordination is what the nodes of one cluster agree on beyond their leases: which node leads a
// cluster-wide job (the ali-vpc route controller), and the per-node status that leader publishes for each node to
// read (is my VPC route Available, and if not, why). The daemon builds one Coordinator from the cluster store it
// already uses, an etcd election and keys in etcd mode or a coordination.k8s.io Lease and the Node's
// NetworkUnavailable condition in Kubernetes mode, and hands it to the backends that need it.
//
// A status belongs to one incarnation of a node's lease: once the lease is removed, a status published for it
// never answers for a lease the node (or another) takes later, so a re-joining node is not ready on its
// predecessor's word.
package coordination

import (
	"context"

	"github.com/weftnet/weft/subnet"
)

// Status is a node's state as the leader sees it.
type Status struct {
	Routed bool
	Reason string // why not, e.g. RouteTableQuotaExceeded
}

// Coordinator elects leaders and carries the leader's per-node status.
type Coordinator interface {
	// Lead blocks until this node leads the election called name (as id), then returns a context that ends when
	// leadership is lost or ctx ends.
	Lead(ctx context.Context, name, id string) (context.Context, error)
	// Publish records the status of the node holding l.
	Publish(ctx context.Context, l *subnet.Lease, st Status) error
	// Status reads the status published for l's node and incarnation; ok is false when there is none.
	Status(ctx context.Context, l *subnet.Lease) (st Status, ok bool, err error)
	// Forget drops the status of a removed lease.
	Forget(ctx context.Context, l *subnet.Lease) error
}
