package reconcile

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func veth(cid, ifname string) string { return "wen-" + cid + "-" + ifname }

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func ips(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, ip(s))
	}
	return out
}

func assigned(cid, addr, eni string) checkpoint.Record {
	return checkpoint.Record{ContainerID: cid, IfName: "eth0", PodNamespace: "default", PodName: "pod-" + cid,
		Netns: "/var/run/netns/" + cid, IP: ip(addr), ENI: eni, State: checkpoint.Assigned, AssignedAt: t0}
}

func cooldown(cid, addr, eni string, released time.Time) checkpoint.Record {
	r := assigned(cid, addr, eni)
	r.State, r.ReleasedAt = checkpoint.Cooldown, released
	return r
}

func quarantined(cid, addr, eni, reason string) checkpoint.Record {
	r := assigned(cid, addr, eni)
	if cid == "" {
		r = checkpoint.Record{IP: ip(addr), ENI: eni}
	}
	r.State, r.Reason = checkpoint.Quarantined, reason
	return r
}

func host(cid, addr string) HostPod { return HostPod{Veth: veth(cid, "eth0"), IP: ip(addr)} }

func eni(id string, addrs ...string) CloudENI {
	return CloudENI{ID: id, MAC: "00:16:3e:00:00:01", Status: "InUse", InstanceID: "i-1", Addrs: ips(addrs...)}
}

func render(recs []checkpoint.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s %s %s", r.IP, r.State, r.ENI, r.ContainerID)))
	}
	return out
}

func renderFindings(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s %s", f.IP, f.Kind, f.ContainerID)))
	}
	return out
}

// checkCase checks a table case's outcome: its records as show renders them and its findings as renderFindings
// does, each finding's message logged, and checkOutcome.
func checkCase(t *testing.T, o Outcome, show func([]checkpoint.Record) []string, records, findings []string) {
	t.Helper()
	if got := show(o.Records); !slices.Equal(got, records) {
		t.Errorf("records\n got %q\nwant %q", got, records)
	}
	if got := renderFindings(o.Findings); !slices.Equal(got, findings) {
		t.Errorf("findings\n got %q\nwant %q", got, findings)
	}
	for _, f := range o.Findings {
		t.Log(f.Message)
	}
	checkOutcome(t, o)
}

// checkOutcome holds for every outcome: records the pool can save, no address twice among Assigned and Cooldown,
// every Quarantined record with a Reason, every finding one sentence naming its address, ENI and pod.
func checkOutcome(t *testing.T, o Outcome) {
	t.Helper()
	f := checkpoint.File{Version: checkpoint.Version, Instance: "i-1", Records: o.Records}
	if err := f.Validate(); err != nil {
		t.Errorf("outcome not savable: %v", err)
	}
	for _, r := range o.Records {
		if r.State == checkpoint.Quarantined && r.Reason == "" {
			t.Errorf("quarantined without a reason: %+v", r)
		}
	}
	kinds := []string{KindMoved, KindGone, KindUnrecorded, KindConflict, KindDropped, KindInvalid}
	for _, fd := range o.Findings {
		m := fd.Message
		if !slices.Contains(kinds, fd.Kind) {
			t.Errorf("finding of unknown kind %q", fd.Kind)
		}
		if fd.IP.IsValid() && !strings.Contains(m, fd.IP.String()) {
			t.Errorf("finding does not name its address %s: %q", fd.IP, m)
		}
		if fd.ENI != "" && !strings.Contains(m, "ENI "+fd.ENI) {
			t.Errorf("finding does not name its ENI %s: %q", fd.ENI, m)
		}
		if fd.ContainerID != "" && !strings.Contains(m, fd.ContainerID[:min(12, len(fd.ContainerID))]) {
			t.Errorf("finding does not name its pod %s: %q", fd.ContainerID, m)
		}
		if !strings.HasSuffix(m, ".") || strings.Count(m, ". ") > 0 || strings.ContainsAny(m, "\n\r") {
			t.Errorf("finding not one sentence: %q", m)
		}
	}
}

func TestReconcile(t *testing.T) {
	later := t0.Add(time.Minute)
	cases := []struct {
		name     string
		t        Truths
		records  []string
		findings []string
	}{{
		name: "adopt: cloud lists it on its ENI, host routes it to its veth",
		t: Truths{Checkpoint: []checkpoint.Record{assigned("c1", "10.0.0.5", "eni-a")},
			Cloud: []CloudENI{eni("eni-a", "10.0.0.2", "10.0.0.5")}, Host: []HostPod{host("c1", "10.0.0.5")}},
		records: []string{"10.0.0.5 Assigned eni-a c1"},
	}, {
		name: "adopt: no datapath yet (an ADD that crashed before the plugin built it)",
		t: Truths{Checkpoint: []checkpoint.Record{assigned("c1", "10.0.0.5", "eni-a")},
			Cloud: []CloudENI{eni("eni-a", "10.0.0.2", "10.0.0.5")}},
		records: []string{"10.0.0.5 Assigned eni-a c1"},
	}, {
		name: "address moved to another ENI",
		t: Truths{Checkpoint: []checkpoint.Record{assigned("c1", "10.0.0.5", "eni-a")},
			Cloud: []CloudENI{eni("eni-a", "10.0.0.2"), eni("eni-b", "10.0.0.3", "10.0.0.5")},
			Host:  []HostPod{host("c1", "10.0.0.5")}},
		records:  []string{"10.0.0.5 Quarantined eni-b c1"},
		findings: []string{"10.0.0.5 AddressMoved c1"},
	}, {
		name: "address gone from the cloud",
		t: Truths{Checkpoint: []checkpoint.Record{assigned("c1", "10.0.0.5", "eni-a")},
			Cloud: []CloudENI{eni("eni-a", "10.0.0.2")}, Host: []HostPod{host("c1", "10.0.0.5")}},
		records:  []string{"10.0.0.5 Quarantined eni-a c1"},
		findings: []string{"10.0.0.5 AddressGone c1"},
	}, {
		name:     "address gone, and no datapath either: still quarantined, the pod is reported",
		t:        Truths{Checkpoint: []checkpoint.Record{assigned("c1", "10.0.0.5", "eni-a")}},
		records:  []string{"10.0.0.5 Quarantined eni-a c1"},
		findings: []string{"10.0.0.5 AddressGone c1"},
	}, {
		name: "host datapath without a record",
		t: Truths{Cloud: []CloudENI{eni("eni-a", "10.0.0.2", "10.0.0.7")},
			Host: []HostPod{{Veth: "wen0123456789ab", IP: ip("10.0.0.7")}}},
		records:  []string{"10.0.0.7 Quarantined eni-a"},
		findings: []string{"10.0.0.7 UnrecordedDatapath"},
	}, {
		name:     "host datapath of an address no ENI lists: quarantined with no ENI, should the cloud list it again",
		t:        Truths{Host: []HostPod{{Veth: "wen0123456789ab", IP: ip("10.0.0.7")}}},
		records:  []string{"10.0.0.7 Quarantined"},
		findings: []string{"10.0.0.7 UnrecordedDatapath"},
	}, {
		name: "host routes a pod's address to another veth",
		t: Truths{Checkpoint: []checkpoint.Record{assigned("c1", "10.0.0.5", "eni-a")},
			Cloud: []CloudENI{eni("eni-a", "10.0.0.5")}, Host: []HostPod{host("c9", "10.0.0.5")}},
		records:  []string{"10.0.0.5 Quarantined eni-a c1"},
		findings: []string{"10.0.0.5 UnrecordedDatapath c1"},
	}, {
		name: "two records for one address, one matching the host veth",
		t: Truths{Checkpoint: []checkpoint.Record{assigned("c1", "10.0.0.5", "eni-a"), assigned("c2", "10.0.0.5", "eni-a")},
			Cloud: []CloudENI{eni("eni-a", "10.0.0.5")}, Host: []HostPod{host("c2", "10.0.0.5")}},
		records:  []string{"10.0.0.5 Assigned eni-a c2", "10.0.0.5 Quarantined eni-a c1"},
		findings: []string{"10.0.0.5 AddressConflict c1"},
	}, {
		name: "two records for one address, no host veth to tell them apart",
		t: Truths{Checkpoint: []checkpoint.Record{assigned("c2", "10.0.0.5", "eni-a"), assigned("c1", "10.0.0.5", "eni-a")},
			Cloud: []CloudENI{eni("eni-a", "10.0.0.5")}},
		records:  []string{"10.0.0.5 Quarantined eni-a c1", "10.0.0.5 Quarantined eni-a c2"},
		findings: []string{"10.0.0.5 AddressConflict c2", "10.0.0.5 AddressConflict c1"},
	}, {
		name: "one pod interface holding two addresses: the one the host routes to its veth is kept",
		t: Truths{Checkpoint: []checkpoint.Record{assigned("c1", "10.0.0.5", "eni-a"), assigned("c1", "10.0.0.6", "eni-a")},
			Cloud: []CloudENI{eni("eni-a", "10.0.0.5", "10.0.0.6")}, Host: []HostPod{host("c1", "10.0.0.6")}},
		records:  []string{"10.0.0.5 Quarantined eni-a c1", "10.0.0.6 Assigned eni-a c1"},
		findings: []string{"10.0.0.5 AddressConflict c1"},
	}, {
		name: "Cooldown kept while its address exists",
		t: Truths{Checkpoint: []checkpoint.Record{cooldown("c1", "10.0.0.6", "eni-a", t0)},
			Cloud: []CloudENI{eni("eni-a", "10.0.0.6")}},
		records: []string{"10.0.0.6 Cooldown eni-a c1"},
	}, {
		name: "Cooldown follows its address to another ENI",
		t: Truths{Checkpoint: []checkpoint.Record{cooldown("c1", "10.0.0.6", "eni-a", t0)},
			Cloud: []CloudENI{eni("eni-b", "10.0.0.6")}},
		records: []string{"10.0.0.6 Cooldown eni-b c1"},
	}, {
		name: "Cooldown dropped when the address is gone from the cloud",
		t: Truths{Checkpoint: []checkpoint.Record{cooldown("c1", "10.0.0.6", "eni-a", t0)},
			Cloud: []CloudENI{eni("eni-a", "10.0.0.2")}},
		findings: []string{"10.0.0.6 RecordDropped c1"},
	}, {
		name: "Cooldown of an address a pod claims is superseded",
		t: Truths{Checkpoint: []checkpoint.Record{cooldown("c1", "10.0.0.6", "eni-a", t0), assigned("c2", "10.0.0.6", "eni-a")},
			Cloud: []CloudENI{eni("eni-a", "10.0.0.6")}},
		records:  []string{"10.0.0.6 Assigned eni-a c2"},
		findings: []string{"10.0.0.6 RecordDropped c1"},
	}, {
		name: "two Cooldown records of one address: the later release counts",
		t: Truths{Checkpoint: []checkpoint.Record{cooldown("c1", "10.0.0.6", "eni-a", later), cooldown("c2", "10.0.0.6", "eni-a", t0)},
			Cloud: []CloudENI{eni("eni-a", "10.0.0.6")}},
		records:  []string{"10.0.0.6 Cooldown eni-a c1"},
		findings: []string{"10.0.0.6 RecordDropped c2"},
	}, {
		name: "Cooldown still routed to the pod that released it: quarantined with that pod",
		t: Truths{Checkpoint: []checkpoint.Record{cooldown("c1", "10.0.0.6", "eni-a", t0)},
			Cloud: []CloudENI{eni("eni-a", "10.0.0.6")}, Host: []HostPod{host("c1", "10.0.0.6")}},
		records:  []string{"10.0.0.6 Quarantined eni-a c1"},
		findings: []string{"10.0.0.6 UnrecordedDatapath c1"},
	}, {
		name: "Cooldown of an address gone from the cloud but still routed: quarantined, not dropped",
		t: Truths{Checkpoint: []checkpoint.Record{cooldown("c1", "10.0.0.6", "eni-a", t0)},
			Host: []HostPod{host("c1", "10.0.0.6")}},
		records:  []string{"10.0.0.6 Quarantined eni-a c1"},
		findings: []string{"10.0.0.6 UnrecordedDatapath c1"},
	}, {
		name: "Cooldown routed to another veth: quarantined for that datapath",
		t: Truths{Checkpoint: []checkpoint.Record{cooldown("c1", "10.0.0.6", "eni-a", t0)},
			Cloud: []CloudENI{eni("eni-a", "10.0.0.6")}, Host: []HostPod{host("c7", "10.0.0.6")}},
		records:  []string{"10.0.0.6 Quarantined eni-a"},
		findings: []string{"10.0.0.6 UnrecordedDatapath", "10.0.0.6 RecordDropped c1"},
	}, {
		name: "earlier quarantine kept while the address exists, dropped when gone from cloud and host",
		t: Truths{Checkpoint: []checkpoint.Record{quarantined("c1", "10.0.0.5", "eni-a", "x"), quarantined("", "10.0.0.9", "eni-a", "y")},
			Cloud: []CloudENI{eni("eni-a", "10.0.0.5")}},
		records:  []string{"10.0.0.5 Quarantined eni-a c1"},
		findings: []string{"10.0.0.9 RecordDropped"},
	}, {
		name: "earlier quarantine of a pod whose datapath is there: kept, nothing new to report",
		t: Truths{Checkpoint: []checkpoint.Record{quarantined("c1", "10.0.0.5", "eni-a", "x")},
			Host: []HostPod{host("c1", "10.0.0.5")}},
		records: []string{"10.0.0.5 Quarantined eni-a c1"},
	}, {
		name: "idle cloud addresses are not in Records",
		t: Truths{Checkpoint: []checkpoint.Record{assigned("c1", "10.0.0.5", "eni-a")},
			Cloud: []CloudENI{eni("eni-a", "10.0.0.2", "10.0.0.5", "10.0.0.8"), eni("eni-b", "10.0.0.3", "10.0.0.9")},
			Host:  []HostPod{host("c1", "10.0.0.5")}},
		records: []string{"10.0.0.5 Assigned eni-a c1"},
	}, {
		name: "invalid record: quarantined, not adopted",
		t: Truths{Checkpoint: []checkpoint.Record{func() checkpoint.Record {
			r := assigned("c1", "10.0.0.5", "eni-a")
			r.IfName = ""
			return r
		}()}, Cloud: []CloudENI{eni("eni-a", "10.0.0.5")}},
		records:  []string{"10.0.0.5 Quarantined eni-a c1"},
		findings: []string{"10.0.0.5 InvalidRecord c1"},
	}, {
		name: "record of an unusable address: dropped, reported",
		t: Truths{Checkpoint: []checkpoint.Record{func() checkpoint.Record {
			r := assigned("c1", "10.0.0.5", "eni-a")
			r.IP = netip.Addr{}
			return r
		}()}},
		findings: []string{"invalid IP InvalidRecord c1"},
	}, {
		name: "4in6 forms are the same address",
		t: Truths{Checkpoint: []checkpoint.Record{assigned("c1", "10.0.0.5", "eni-a")},
			Cloud: []CloudENI{eni("eni-a", "::ffff:10.0.0.5")}, Host: []HostPod{{Veth: veth("c1", "eth0"), IP: ip("::ffff:10.0.0.5")}}},
		records: []string{"10.0.0.5 Assigned eni-a c1"},
	}, {
		name: "no VethName: a routed address cannot be matched to its record, so it is quarantined",
		t: Truths{Checkpoint: []checkpoint.Record{assigned("c1", "10.0.0.5", "eni-a")},
			Cloud: []CloudENI{eni("eni-a", "10.0.0.5")}, Host: []HostPod{host("c1", "10.0.0.5")}, VethName: nil},
		records:  []string{"10.0.0.5 Quarantined eni-a c1"},
		findings: []string{"10.0.0.5 UnrecordedDatapath c1"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.HasPrefix(c.name, "no VethName") {
				c.t.VethName = veth
			}
			o := Reconcile(c.t)
			checkCase(t, o, render, c.records, c.findings)
		})
	}
}

func TestFindingMessage(t *testing.T) {
	long := "0123456789abcdef0123456789abcdef"
	o := Reconcile(Truths{Checkpoint: []checkpoint.Record{assigned(long, "10.0.0.5", "eni-a")},
		Cloud: []CloudENI{eni("eni-b", "10.0.0.5")}, VethName: veth})
	if len(o.Findings) != 1 {
		t.Fatalf("findings %+v", o.Findings)
	}
	want := "Address 10.0.0.5 of pod default/pod-" + long + " (container 0123456789ab, eth0) is listed on ENI eni-b, not on ENI eni-a as checkpointed; quarantined."
	if f := o.Findings[0]; f.Message != want || f.Kind != KindMoved || f.ContainerID != long || f.ENI != "eni-a" {
		t.Fatalf("finding %+v\nwant message %q", f, want)
	}
	if r := o.Records[0]; !strings.HasPrefix(r.Reason, KindMoved+": Address 10.0.0.5") {
		t.Fatalf("reason %q", r.Reason)
	}
}

// randomTruths builds truths from a few addresses, ENIs and pods, so that they collide often.
func randomTruths(rng *rand.Rand) Truths {
	addr := func() netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + rng.IntN(10))}) }
	enis := []string{"eni-a", "eni-b", "eni-c"}
	cids := []string{"c0", "c1", "c2", "c3", "c4", "c5"}
	ifnames := []string{"eth0", "eth1"}
	var t Truths
	for range rng.IntN(10) {
		r := checkpoint.Record{ContainerID: cids[rng.IntN(len(cids))], IfName: ifnames[rng.IntN(2)], IP: addr(),
			ENI: enis[rng.IntN(len(enis))], AssignedAt: t0}
		if rng.IntN(2) == 0 {
			r.PodNamespace, r.PodName = "ns", "p-"+r.ContainerID
		}
		switch rng.IntN(10) {
		case 0, 1, 2, 3, 4:
			r.State = checkpoint.Assigned
		case 5, 6:
			r.State, r.ReleasedAt = checkpoint.Cooldown, t0.Add(time.Duration(rng.IntN(3))*time.Second)
		case 7, 8:
			r.State, r.Reason = checkpoint.Quarantined, "earlier"
			if rng.IntN(2) == 0 {
				r.ContainerID, r.IfName, r.PodNamespace, r.PodName = "", "", "", ""
			}
		default: // broken in some way
			switch rng.IntN(4) {
			case 0:
				r.State = "Free"
			case 1:
				r.State, r.IfName = checkpoint.Assigned, ""
			case 2:
				r.State = checkpoint.Cooldown
			default:
				r.State, r.ENI = checkpoint.Assigned, ""
			}
		}
		t.Checkpoint = append(t.Checkpoint, r)
	}
	for _, id := range enis {
		if rng.IntN(4) == 0 {
			continue
		}
		e := CloudENI{ID: id, Status: "InUse", InstanceID: "i-1"}
		for range rng.IntN(5) {
			e.Addrs = append(e.Addrs, addr())
		}
		t.Cloud = append(t.Cloud, e)
	}
	for range rng.IntN(5) {
		v := "wen-stranger"
		if rng.IntN(4) != 0 {
			v = veth(cids[rng.IntN(len(cids))], ifnames[rng.IntN(2)])
		}
		t.Host = append(t.Host, HostPod{Veth: v, IP: addr()})
	}
	t.VethName = veth
	return t
}

// For any truths: every address the checkpoint (Assigned) or the host says is in use is in the outcome's
// records (adopted or quarantined, never idle); no address is twice among Assigned and Cooldown records; the
// records are savable; an adopted record is one the cloud and the host agree with; and reconciling the outcome
// again changes nothing.
func TestReconcileProperties(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	n := 3000
	if testing.Short() {
		n = 1000
	}
	for range n {
		tr := randomTruths(rng)
		o := Reconcile(tr)
		held := map[netip.Addr]bool{}
		for _, r := range o.Records {
			held[r.IP] = true
		}
		fail := func(format string, a ...any) {
			t.Helper()
			t.Fatalf("%s\ncheckpoint %+v\ncloud %+v\nhost %+v\nrecords %q", fmt.Sprintf(format, a...),
				tr.Checkpoint, tr.Cloud, tr.Host, render(o.Records))
		}
		for _, r := range tr.Checkpoint {
			if r.State == checkpoint.Assigned && !held[r.IP] && r.IP.IsValid() {
				fail("checkpointed address %s of %s left out", r.IP, r.ContainerID)
			}
		}
		for _, h := range tr.Host {
			if !held[h.IP] {
				fail("routed address %s (%s) left out", h.IP, h.Veth)
			}
		}
		seen := map[netip.Addr]bool{}
		for _, r := range o.Records {
			if r.State == checkpoint.Quarantined {
				continue
			}
			if seen[r.IP] {
				fail("address %s twice", r.IP)
			}
			seen[r.IP] = true
			if r.State != checkpoint.Assigned {
				continue
			}
			listed := slices.ContainsFunc(tr.Cloud, func(e CloudENI) bool { return e.ID == r.ENI && slices.Contains(e.Addrs, r.IP) })
			foreign := slices.ContainsFunc(tr.Host, func(h HostPod) bool { return h.IP == r.IP && h.Veth != veth(r.ContainerID, r.IfName) })
			if !listed || foreign {
				fail("adopted %s of %s: listed on %s %v, routed to another veth %v", r.IP, r.ContainerID, r.ENI, listed, foreign)
			}
		}
		if err := (&checkpoint.File{Version: checkpoint.Version, Instance: "i-1", Records: o.Records}).Validate(); err != nil {
			fail("not savable: %v", err)
		}
		again := tr
		again.Checkpoint = o.Records
		if o2 := Reconcile(again); !slices.Equal(render(o2.Records), render(o.Records)) {
			fail("not idempotent: again %q", render(o2.Records))
		}
		// The checkpoint's order does not matter.
		shuffled := tr
		shuffled.Checkpoint = slices.Clone(tr.Checkpoint)
		rng.Shuffle(len(shuffled.Checkpoint), func(i, j int) {
			shuffled.Checkpoint[i], shuffled.Checkpoint[j] = shuffled.Checkpoint[j], shuffled.Checkpoint[i]
		})
		if o3 := Reconcile(shuffled); !slices.Equal(render(o3.Records), render(o.Records)) {
			fail("depends on the checkpoint's order: shuffled %q", render(o3.Records))
		}
	}
}

func TestOrphans(t *testing.T) {
	now := t0.Add(time.Hour)
	young := assigned("young", "10.0.0.4", "eni-a")
	young.AssignedAt = now.Add(-30 * time.Second)
	noAge := assigned("noage", "10.0.0.9", "eni-a")
	noAge.AssignedAt = time.Time{}
	noPod := assigned("nopod", "10.0.0.10", "eni-a")
	noPod.PodNamespace, noPod.PodName = "", ""
	terminated := assigned("term", "10.0.0.11", "eni-a")
	records := []checkpoint.Record{
		assigned("gone", "10.0.0.1", "eni-a"),            // orphan
		assigned("live", "10.0.0.2", "eni-a"),            // pod live
		assigned("veth", "10.0.0.3", "eni-a"),            // pod gone, datapath still there
		young,                                            // too young: an ADD in flight
		cooldown("cool", "10.0.0.5", "eni-a", t0),        // not held
		quarantined("q", "10.0.0.6", "eni-a", "moved"),   // a pod's quarantine: orphan
		quarantined("", "10.0.0.7", "eni-a", "datapath"), // no pod: never
		noAge, noPod, terminated,
	}
	live := map[PodKey]bool{{"default", "pod-live"}: true, {"default", "pod-term"}: false}
	hostVeths := map[string]bool{veth("veth", "eth0"): true}
	got := Orphans(records, live, hostVeths, veth, now, time.Minute)
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ContainerID)
	}
	if want := []string{"gone", "q", "term"}; !slices.Equal(ids, want) {
		t.Fatalf("orphans %q, want %q", ids, want)
	}
	// Exactly minAge old counts; nil vethName (host unknown) never frees anything.
	young.AssignedAt = now.Add(-time.Minute)
	if got := Orphans([]checkpoint.Record{young}, nil, nil, veth, now, time.Minute); len(got) != 1 {
		t.Fatalf("a record minAge old: %d orphans", len(got))
	}
	if got := Orphans(records, nil, nil, nil, now, time.Minute); len(got) != 0 {
		t.Fatalf("no vethName: %d orphans", len(got))
	}
}

func TestDeletableENIs(t *testing.T) {
	now := t0.Add(time.Hour)
	const grace = 10 * time.Minute
	tags := func(cluster, node string) map[string]string {
		m := map[string]string{"weft.io/created-by": "weftd"}
		if cluster != "" {
			m["weft.io/cluster"] = cluster
		}
		if node != "" {
			m["weft.io/node"] = node
		}
		return m
	}
	detached := func(id, cluster, node string) CloudENI {
		return CloudENI{ID: id, Status: "Available", Tags: tags(cluster, node)}
	}
	enis := []CloudENI{
		detached("eni-gone-node", "k1", "n-gone"),
		detached("eni-missing-node", "k1", "n-absent"),
		detached("eni-ready-node", "k1", "n-ready"),
		detached("eni-cordoned", "k1", "n-cordoned"),
		detached("eni-deleting", "k1", "n-deleting"),
		detached("eni-young", "k1", "n-gone"),
		detached("eni-never-seen", "k1", "n-gone"),
		detached("eni-other-cluster", "k2", "n-gone"),
		detached("eni-untagged", "", "n-gone"),
		detached("eni-no-node-tag", "k1", ""),
		{ID: "eni-inuse", Status: "InUse", InstanceID: "i-1", Tags: tags("k1", "n-gone")},
		{ID: "eni-detaching", Status: "Detaching", Tags: tags("k1", "n-gone")},
		{ID: "eni-attached-available", Status: "Available", InstanceID: "i-9", Tags: tags("k1", "n-gone")},
		detached("eni-exactly-grace", "k1", "n-gone"),
		detached("eni-gone-node", "k1", "n-gone"), // listed twice
	}
	since := map[string]time.Time{}
	for _, e := range enis {
		since[e.ID] = now.Add(-time.Hour)
	}
	since["eni-young"] = now.Add(-grace + time.Second)
	since["eni-exactly-grace"] = now.Add(-grace)
	delete(since, "eni-never-seen")
	nodes := map[string]NodeState{
		"n-gone":     {Exists: false},
		"n-ready":    {Exists: true},
		"n-cordoned": {Exists: true, Unschedulable: true},
		"n-deleting": {Exists: true, Deleting: true},
	}
	got := DeletableENIs(enis, since, nodes, "weft.io/cluster", "k1", "weft.io/node", now, grace)
	want := []string{"eni-exactly-grace", "eni-gone-node", "eni-missing-node", "eni-ready-node"}
	if !slices.Equal(got, want) {
		t.Fatalf("deletable %q, want %q", got, want)
	}
	for _, c := range []struct{ tag, id, node string }{{"", "k1", "weft.io/node"}, {"weft.io/cluster", "", "weft.io/node"}, {"weft.io/cluster", "k1", ""}} {
		if got := DeletableENIs(enis, since, nodes, c.tag, c.id, c.node, now, grace); len(got) != 0 {
			t.Errorf("tags %q: deletable %q, want none", c, got)
		}
	}
	// An ENI detached "in the future" (clock skew) is not old enough, whatever the grace.
	since["eni-ready-node"] = now.Add(time.Minute)
	if got := DeletableENIs(enis[2:3], since, nodes, "weft.io/cluster", "k1", "weft.io/node", now, -time.Hour); len(got) != 0 {
		t.Errorf("future availableSince: %q", got)
	}
}
