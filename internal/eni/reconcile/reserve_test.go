package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

// reservedFor is a Reserved record of pod web-<n>'s address: no container (the pod is gone), kept until later.
func reservedFor(n, addr, eni string) checkpoint.Record {
	return checkpoint.Record{IfName: "eth0", PodNamespace: "default", PodName: "web-" + n, IP: ip(addr), ENI: eni,
		State: checkpoint.Reserved, Reserve: true, StatefulSet: "web", AssignedAt: t0, ReleasedAt: t0.Add(time.Minute),
		ReservedUntil: t0.Add(6 * time.Minute)}
}

func renderRes(recs []checkpoint.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, strings.TrimSpace(r.IP.String()+" "+string(r.State)+" "+r.ENI+" "+r.PodName+" "+r.ContainerID))
	}
	return out
}

// At start-up a reservation is a valid state: the pod is gone, the host has no veth for it, the cloud still lists
// the address. Kept as it is, not quarantined, not freed; dropped only when what it keeps is gone or taken.
func TestReconcileReserved(t *testing.T) {
	later := reservedFor("0", "10.0.0.5", "eni-a")
	later.ReleasedAt = t0.Add(2 * time.Minute)
	other := reservedFor("1", "10.0.0.5", "eni-a")
	cases := []struct {
		name     string
		t        Truths
		records  []string
		findings []string
	}{{
		name:    "kept: listed on its ENI, no veth",
		t:       Truths{Checkpoint: []checkpoint.Record{reservedFor("0", "10.0.0.5", "eni-a")}, Cloud: []CloudENI{eni("eni-a", "10.0.0.2", "10.0.0.5")}},
		records: []string{"10.0.0.5 Reserved eni-a web-0"},
	}, {
		name:    "kept beside the pods of the node",
		t:       Truths{Checkpoint: []checkpoint.Record{reservedFor("0", "10.0.0.5", "eni-a"), assigned("c1", "10.0.0.6", "eni-a")}, Cloud: []CloudENI{eni("eni-a", "10.0.0.5", "10.0.0.6")}, Host: []HostPod{host("c1", "10.0.0.6")}},
		records: []string{"10.0.0.5 Reserved eni-a web-0", "10.0.0.6 Assigned eni-a pod-c1 c1"},
	}, {
		name:    "listed on another ENI: kept there",
		t:       Truths{Checkpoint: []checkpoint.Record{reservedFor("0", "10.0.0.5", "eni-a")}, Cloud: []CloudENI{eni("eni-b", "10.0.0.5")}},
		records: []string{"10.0.0.5 Reserved eni-b web-0"},
	}, {
		name:     "gone from the cloud: dropped",
		t:        Truths{Checkpoint: []checkpoint.Record{reservedFor("0", "10.0.0.5", "eni-a")}, Cloud: []CloudENI{eni("eni-a", "10.0.0.2")}},
		findings: []string{"10.0.0.5 RecordDropped"},
	}, {
		name:     "a pod claims it: the claim wins",
		t:        Truths{Checkpoint: []checkpoint.Record{reservedFor("0", "10.0.0.5", "eni-a"), assigned("c1", "10.0.0.5", "eni-a")}, Cloud: []CloudENI{eni("eni-a", "10.0.0.5")}},
		records:  []string{"10.0.0.5 Assigned eni-a pod-c1 c1"},
		findings: []string{"10.0.0.5 RecordDropped"},
	}, {
		name:     "routed to a veth: dropped, the datapath quarantined",
		t:        Truths{Checkpoint: []checkpoint.Record{reservedFor("0", "10.0.0.5", "eni-a")}, Cloud: []CloudENI{eni("eni-a", "10.0.0.5")}, Host: []HostPod{host("x", "10.0.0.5")}},
		records:  []string{"10.0.0.5 Quarantined eni-a"},
		findings: []string{"10.0.0.5 RecordDropped", "10.0.0.5 UnrecordedDatapath"},
	}, {
		name:     "a reservation and a cooldown of one address: the reservation",
		t:        Truths{Checkpoint: []checkpoint.Record{reservedFor("0", "10.0.0.5", "eni-a"), cooldown("c9", "10.0.0.5", "eni-a", t0)}, Cloud: []CloudENI{eni("eni-a", "10.0.0.5")}},
		records:  []string{"10.0.0.5 Reserved eni-a web-0"},
		findings: []string{"10.0.0.5 RecordDropped c9"},
	}, {
		name:     "two reservations of one address: the later release",
		t:        Truths{Checkpoint: []checkpoint.Record{other, later}, Cloud: []CloudENI{eni("eni-a", "10.0.0.5")}},
		records:  []string{"10.0.0.5 Reserved eni-a web-0"},
		findings: []string{"10.0.0.5 RecordDropped"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.t.VethName = veth
			o := Reconcile(c.t)
			checkCase(t, o, renderRes, c.records, c.findings)
			for _, r := range o.Records {
				if r.State == checkpoint.Reserved && (!r.Reserve || r.ReservedUntil.IsZero() || r.StatefulSet != "web") {
					t.Errorf("reservation changed: %+v", r)
				}
			}
		})
	}
}

// The GC never frees a reservation (it has no pod to be an orphan of); a reserving pod's Assigned record whose pod
// is gone is an orphan like any other: its release is what turns it into the reservation.
func TestOrphansReserved(t *testing.T) {
	now := t0.Add(time.Hour)
	held := assigned("c1", "10.0.0.6", "eni-a")
	held.Reserve = true
	got := Orphans([]checkpoint.Record{reservedFor("0", "10.0.0.5", "eni-a"), held}, map[PodKey]bool{}, nil, veth, now, time.Minute)
	if len(got) != 1 || got[0].ContainerID != "c1" {
		t.Fatalf("orphans %+v, want only the Assigned record", got)
	}
}
