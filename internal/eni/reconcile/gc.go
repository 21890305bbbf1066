package reconcile

// The garbage collectors' decisions: which addresses' records may be freed (Orphans) and which detached ENIs
// deleted (DeletableENIs).

import (
	"slices"
	"time"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

// PodKey names a pod in the API.
type PodKey struct{ Namespace, Name string }

// Orphans returns the records whose addresses the GC may free: Assigned records (and Quarantined ones of a pod,
// which the pod's DEL would have dropped) whose pod is not live in the API (absent from live, or false there:
// terminated), whose host veth vethName(containerID, ifName) is not in hostVeths, and which were assigned at
// least minAge before now (younger ones may be an ADD in flight). live holds the pods of this node that are not
// terminated. A record that cannot be judged is never an orphan: one without a pod name (nothing to ask the API),
// without AssignedAt (age unknown) or when vethName is nil (host unknown). Records keep their input order. A
// Reserved record is never an orphan (keeping the address of a gone pod is its point); an Assigned record with
// Reserve is, and the pool's release of it is what makes it the pod's reservation.
func Orphans(records []checkpoint.Record, live map[PodKey]bool, hostVeths map[string]bool,
	vethName func(containerID, ifName string) string, now time.Time, minAge time.Duration) []checkpoint.Record {
	var out []checkpoint.Record
	for _, r := range records {
		if r.State != checkpoint.Assigned && r.State != checkpoint.Quarantined {
			continue
		}
		if r.ContainerID == "" || r.IfName == "" || r.PodName == "" || vethName == nil || r.AssignedAt.IsZero() {
			continue
		}
		if live[PodKey{Namespace: r.PodNamespace, Name: r.PodName}] {
			continue
		}
		if hostVeths[vethName(r.ContainerID, r.IfName)] {
			continue
		}
		if now.Sub(r.AssignedAt) < minAge {
			continue
		}
		out = append(out, r)
	}
	return out
}

// NodeState is a node as the API shows it.
type NodeState struct{ Exists, Unschedulable, Deleting bool }

// statusAvailable is a detached ENI's status.
const statusAvailable = "Available"

// DeletableENIs returns the ids (sorted, once each) of the ENIs the elected node may delete: carrying
// clusterTag=clusterID, Available (detached), Available since at least grace before now by availableSince (an ENI
// not in it has not been seen detached long enough), and tagged nodeTag=<node> with that node gone (absent from
// nodes, or Exists false) or existing, schedulable and not being deleted. An ENI without the cluster tag, of
// another cluster, without a node tag, or attached to an instance is never returned; nor is any ENI when
// clusterTag, clusterID or nodeTag is empty. A negative grace counts as zero.
func DeletableENIs(enis []CloudENI, availableSince map[string]time.Time, nodes map[string]NodeState,
	clusterTag, clusterID, nodeTag string, now time.Time, grace time.Duration) []string {
	if clusterTag == "" || clusterID == "" || nodeTag == "" {
		return nil
	}
	grace = max(grace, 0)
	var out []string
	for _, e := range enis {
		if e.ID == "" || e.Tags[clusterTag] != clusterID || e.Status != statusAvailable || e.InstanceID != "" {
			continue
		}
		since, ok := availableSince[e.ID]
		if !ok || since.IsZero() || now.Sub(since) < grace {
			continue
		}
		node := e.Tags[nodeTag]
		if node == "" {
			continue
		}
		if n, ok := nodes[node]; ok && n.Exists && (n.Unschedulable || n.Deleting) {
			continue
		}
		if keepTrunk(e, nodes[node]) { // trunk.go
			continue
		}
		out = append(out, e.ID)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
