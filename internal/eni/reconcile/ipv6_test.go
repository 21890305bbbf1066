package reconcile

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

func with6(r checkpoint.Record, v6 string) checkpoint.Record {
	r.IPv6 = ip(v6)
	return r
}

// The IPv6 partner of each record is judged against the cloud and the host: a disagreement quarantines an adopted
// pod's pair, a cooling-down or reserved record loses a partner the cloud no longer lists, and an IPv6 datapath
// no record holds is kept with its veth's quarantined record or reported.
func TestReconcileIPv6(t *testing.T) {
	const a6, b6 = "2001:db8::a", "2001:db8::b"
	cloud := func(m map[string][]string) map[string][]netip.Addr {
		out := map[string][]netip.Addr{}
		for id, ss := range m {
			out[id] = ips(ss...)
		}
		return out
	}
	host6 := func(cid, v6 string) HostPod { return HostPod{Veth: veth(cid, "eth0"), IP: ip(v6)} }
	for _, c := range []struct {
		name     string
		recs     []checkpoint.Record
		cloud    map[string][]string
		host     []HostPod
		want     []string // render6 of the records
		findings []string // kinds
	}{
		{name: "agree", recs: []checkpoint.Record{with6(assigned("c1", "10.0.0.5", "eni-1"), a6)},
			cloud: map[string][]string{"eni-1": {a6}}, host: []HostPod{host6("c1", a6)},
			want: []string{"10.0.0.5 2001:db8::a Assigned eni-1 c1"}},
		{name: "no datapath yet is fine", recs: []checkpoint.Record{with6(assigned("c1", "10.0.0.5", "eni-1"), a6)},
			cloud: map[string][]string{"eni-1": {a6}},
			want:  []string{"10.0.0.5 2001:db8::a Assigned eni-1 c1"}},
		{name: "IPv6 gone from the cloud", recs: []checkpoint.Record{with6(assigned("c1", "10.0.0.5", "eni-1"), a6)},
			cloud: map[string][]string{"eni-1": {b6}}, host: []HostPod{host6("c1", a6)},
			want: []string{"10.0.0.5 2001:db8::a Quarantined eni-1 c1"}, findings: []string{KindGone}},
		{name: "IPv6 on another ENI", recs: []checkpoint.Record{with6(assigned("c1", "10.0.0.5", "eni-1"), a6)},
			cloud: map[string][]string{"eni-1": {b6}, "eni-2": {a6}},
			want:  []string{"10.0.0.5 2001:db8::a Quarantined eni-1 c1"}, findings: []string{KindMoved}},
		{name: "IPv6 routed to another veth", recs: []checkpoint.Record{with6(assigned("c1", "10.0.0.5", "eni-1"), a6)},
			cloud: map[string][]string{"eni-1": {a6}}, host: []HostPod{host6("c1", a6), host6("c9", a6)},
			want: []string{"10.0.0.5 2001:db8::a Quarantined eni-1 c1"}, findings: []string{KindUnrecorded}},
		{name: "cooling down, partner gone", recs: []checkpoint.Record{with6(cooldown("c1", "10.0.0.5", "eni-1", t0), a6)},
			cloud: map[string][]string{"eni-1": {}},
			want:  []string{"10.0.0.5 - Cooldown eni-1 c1"}, findings: []string{KindDropped}},
		{name: "cooling down, partner there", recs: []checkpoint.Record{with6(cooldown("c1", "10.0.0.5", "eni-1", t0), a6)},
			cloud: map[string][]string{"eni-1": {a6}},
			want:  []string{"10.0.0.5 2001:db8::a Cooldown eni-1 c1"}},
		{name: "unrecorded IPv6 datapath kept with the veth's quarantined record",
			recs:  []checkpoint.Record{quarantined("c2", "10.0.0.6", "eni-1", "UnrecordedDatapath: x")},
			cloud: map[string][]string{"eni-1": {b6}}, host: []HostPod{host6("c2", b6)},
			want: []string{"10.0.0.6 2001:db8::b Quarantined eni-1 c2"}, findings: []string{KindUnrecorded}},
		{name: "unrecorded IPv6 datapath, no record: reported",
			cloud: map[string][]string{"eni-1": {b6}}, host: []HostPod{host6("c3", b6)},
			findings: []string{KindUnrecorded}},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			out := ReconcileIPv6(Outcome{Records: c.recs}, Truths6{Cloud: cloud(c.cloud), Host: c.host}, veth)
			var got []string
			for _, r := range out.Records {
				v6 := "-"
				if r.IPv6.IsValid() {
					v6 = r.IPv6.String()
				}
				got = append(got, strings.Join([]string{r.IP.String(), v6, string(r.State), r.ENI, r.ContainerID}, " "))
				if err := r.Validate(); err != nil {
					t.Errorf("record %v: %v", r, err)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("records %q, want %q", got, c.want)
			}
			var kinds []string
			for _, f := range out.Findings {
				kinds = append(kinds, f.Kind)
				if !strings.Contains(f.Message, "IPv6 address") {
					t.Errorf("finding %q does not name the IPv6 address", f.Message)
				}
			}
			if !slices.Equal(kinds, c.findings) {
				t.Errorf("findings %v (%v), want kinds %v", kinds, out.Findings, c.findings)
			}
		})
	}
}
