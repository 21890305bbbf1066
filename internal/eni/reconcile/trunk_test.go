package reconcile

import (
	"github.com/weftnet/weft/internal/eni/checkpoint"
	"slices"
	"testing"
	"time"
)

// After a restart, an exclusive pod on a member ENI is adopted as any (its host veth routes its address, the cloud
// lists it on the member); a member whose pod is gone is idle again (absent from Records); a record on the trunk's
// address is never adopted: the trunk is no pod's.
func TestReconcileTrunkAndMembers(t *testing.T) {
	trunk := eni("eni-trunk", "192.168.0.50")
	trunk.Type = TypeTrunk
	m1, m2 := eni("eni-m1", "192.168.0.51"), eni("eni-m2", "192.168.0.52")
	m1.Type, m2.Type = TypeMember, TypeMember
	o := Reconcile(Truths{
		Checkpoint: append([]checkpoint.Record{}, assigned("c1", "192.168.0.51", "eni-m1"), assigned("c9", "192.168.0.50", "eni-trunk")),
		Cloud:      []CloudENI{trunk, m1, m2},
		Host:       []HostPod{host("c1", "192.168.0.51")},
		VethName:   func(cid, ifname string) string { return veth(cid, ifname) },
	})
	checkOutcome(t, o)
	got := render(o.Records)
	want := []string{"192.168.0.50 Quarantined eni-trunk c9", "192.168.0.51 Assigned eni-m1 c1"}
	if !slices.Equal(got, want) {
		t.Fatalf("records %q, want %q", got, want)
	}
	if f := renderFindings(o.Findings); !slices.Equal(f, []string{"192.168.0.50 AddressGone c9"}) {
		t.Fatalf("findings %q", f)
	}
}

// The detached-ENI collector leaves a detached trunk of a node that exists (its agent attaches it back) and
// deletes one of a node that is gone, as any ENI.
func TestDeletableENIsKeepsTheNodesTrunk(t *testing.T) {
	now := t0.Add(time.Hour)
	tags := func(node string) map[string]string {
		return map[string]string{"weft.io/cluster": "k1", "weft.io/node": node}
	}
	enis := []CloudENI{
		{ID: "eni-trunk-live", Status: "Available", Type: TypeTrunk, Tags: tags("n-ready")},
		{ID: "eni-trunk-gone", Status: "Available", Type: TypeTrunk, Tags: tags("n-gone")},
		{ID: "eni-plain-live", Status: "Available", Type: "Secondary", Tags: tags("n-ready")},
		{ID: "eni-trunk-inuse", Status: "InUse", InstanceID: "i-1", Type: TypeTrunk, Tags: tags("n-ready")},
	}
	since := map[string]time.Time{}
	for _, e := range enis {
		since[e.ID] = now.Add(-time.Hour)
	}
	nodes := map[string]NodeState{"n-ready": {Exists: true}, "n-gone": {Exists: false}}
	got := DeletableENIs(enis, since, nodes, "weft.io/cluster", "k1", "weft.io/node", now, 10*time.Minute)
	if want := []string{"eni-plain-live", "eni-trunk-gone"}; !slices.Equal(got, want) {
		t.Fatalf("deletable %q, want %q", got, want)
	}
}
