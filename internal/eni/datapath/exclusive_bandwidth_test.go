package datapath

import (
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/internal/bandwidth"
)

var xLimits = bandwidth.Limits{IngressRate: 40e6, IngressBurst: bandwidth.RuntimeBurst, EgressRate: 20e6, EgressBurst: bandwidth.RuntimeBurst}

// The plan: one ifb per limited direction, on the hook its traffic passes, with a shared pod's tbf; nothing
// without limits; limits tbf cannot shape refused naming the direction.
func TestExclusiveShapingPlan(t *testing.T) {
	dirs, err := exclusiveShaping(xLimits, 1500, 15.625)
	if err != nil || len(dirs) != 2 {
		t.Fatalf("plan %+v %v, want two directions", dirs, err)
	}
	in, eg := dirs[0], dirs[1]
	wantIn, _ := tbfFor(40e6, bandwidth.RuntimeBurst, 1500, 15.625)
	wantEg, _ := tbfFor(20e6, bandwidth.RuntimeBurst, 1500, 15.625)
	if in.Ifb != IfbIngress || in.Hook != netlink.HANDLE_MIN_INGRESS || in.TBF != wantIn || in.TBF.Rate != 5e6 {
		t.Errorf("ingress %+v, want %s on the ingress hook with %+v", in, IfbIngress, wantIn)
	}
	if eg.Ifb != IfbEgress || eg.Hook != netlink.HANDLE_MIN_EGRESS || eg.TBF != wantEg || eg.TBF.Rate != 2.5e6 {
		t.Errorf("egress %+v, want %s on the egress hook with %+v", eg, IfbEgress, wantEg)
	}
	if dirs, err := exclusiveShaping(bandwidth.Limits{EgressRate: 20e6, EgressBurst: 1}, 1500, 1); err != nil || len(dirs) != 1 || dirs[0].Ifb != IfbEgress {
		t.Errorf("egress only: %+v %v", dirs, err)
	}
	if dirs, err := exclusiveShaping(bandwidth.Limits{}, 1500, 1); err != nil || len(dirs) != 0 {
		t.Errorf("no limits: %+v %v, want nothing", dirs, err)
	}
	_, err = exclusiveShaping(bandwidth.Limits{IngressRate: bandwidth.MinRate, IngressBurst: bandwidth.RuntimeBurst}, 1500, 1)
	if err == nil || !strings.Contains(err.Error(), "Bandwidth: ingress rate 1000 bit/s: below") {
		t.Errorf("an unshapable rate: %v", err)
	}
	p := ExclusivePod{Bandwidth: bandwidth.Limits{EgressRate: bandwidth.MinRate, EgressBurst: 1}, MTU: 1500}
	if err := p.validateBandwidth(); err == nil || !strings.Contains(err.Error(), "egress rate") {
		t.Errorf("validateBandwidth: %v", err)
	}
}

// redirectsTo are the devices the u32 filters of a link's clsact hook redirect to. (The kernel's u32 dumps the
// filters of both hooks of one clsact qdisc for either, as they share its hash tables: CHECK tells the
// directions apart by their ifb.)
func redirectsTo(t *testing.T, h *netlink.Handle, link string, hook uint32) string {
	t.Helper()
	fs, err := h.FilterList(linkByName(t, h, link), hook)
	if err != nil {
		return ""
	}
	var to []string
	for _, f := range fs {
		if u, ok := f.(*netlink.U32); ok {
			for _, a := range u.Actions {
				if m, ok := a.(*netlink.MirredAction); ok {
					if l, err := h.LinkByIndex(m.Ifindex); err == nil {
						to = append(to, l.Attrs().Name)
					}
				}
			}
		}
	}
	return strings.Join(to, ",")
}

func hasQdisc(t *testing.T, h *netlink.Handle, link, kind string) bool {
	t.Helper()
	qs, err := h.QdiscList(linkByName(t, h, link))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Type() == kind {
			return true
		}
	}
	return false
}

// A limited exclusive pod: an ifb per direction with weft's tbf at the rates, both interfaces redirecting into
// them, traffic still flowing both ways, CHECK passing and naming what is broken; DEL takes it all away, and
// the ENI is back on the host without a qdisc of the pod's.
func TestExclusiveShapedAddCheckDel(t *testing.T) {
	n := newExclusiveNet(t)
	p := n.xpod()
	p.Bandwidth = xLimits
	if _, err := n.add(p); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ifb  string
		hook uint32
		rate uint64
	}{{IfbIngress, netlink.HANDLE_MIN_INGRESS, 5e6}, {IfbEgress, netlink.HANDLE_MIN_EGRESS, 2.5e6}} {
		q, ok := rootQdisc(t, n.pod, c.ifb).(*netlink.Tbf)
		want, _ := tbfFor(c.rate*8, bandwidth.RuntimeBurst, p.MTU, netlink.TickInUsec())
		if !ok || q.Handle != ShapingHandle || q.Rate != c.rate || q.Buffer != want.Buffer || q.Limit != want.Limit {
			t.Errorf("%s root qdisc %+v, want tbf %s %+v", c.ifb, q, netlink.HandleStr(ShapingHandle), want)
		}
		for _, l := range []string{"eth0", ExclusiveVeth} {
			if got := redirectsTo(t, n.pod, l, c.hook); !strings.Contains(got, c.ifb) {
				t.Errorf("%s's hook %x redirects to %q, want %s", l, c.hook, got, c.ifb)
			}
		}
	}
	if err := n.checkx(p); err != nil {
		t.Fatalf("CHECK after ADD: %v", err)
	}
	if src, err := echo(t, n.podNs, "10.9.0.5:7011", n.vpcNs); err != nil || src != "10.9.0.253" {
		t.Fatalf("VPC -> pod over the shaped ENI: seen from %q, %v", src, err)
	}
	if src, err := echo(t, n.hostNs, "10.8.0.1:7012", n.podNs); err != nil || src != "10.9.0.5" {
		t.Fatalf("pod -> node over the shaped veth1: the node saw %q, %v", src, err)
	}
	for _, ifb := range []string{IfbIngress, IfbEgress} { // the echoes went through both
		if st := linkByName(t, n.pod, ifb).Attrs().Statistics; st == nil || st.TxPackets < 2 {
			t.Errorf("%s passed %+v, want both echoes' packets", ifb, st)
		}
	}
	other := p
	other.Bandwidth.EgressRate = 30e6
	if err := n.checkx(other); err == nil || !strings.Contains(err.Error(), "egress limit on "+IfbEgress+": tbf rate 2500000") {
		t.Errorf("CHECK with another egress rate: %v", err)
	}
	none := p
	none.Bandwidth = bandwidth.Limits{}
	if err := n.checkx(none); err == nil || !strings.Contains(err.Error(), "an ifb "+IfbIngress+" of weft's, but the pod asks for none") {
		t.Errorf("CHECK of an unlimited pod that has limits: %v", err)
	}
	if err := n.pod.FilterDel(&netlink.U32{FilterAttrs: netlink.FilterAttrs{LinkIndex: linkByName(t, n.pod, ExclusiveVeth).Attrs().Index,
		Parent: netlink.HANDLE_MIN_INGRESS, Priority: shapingFilterPrio, Protocol: 3}}); err != nil {
		t.Fatal(err)
	}
	if err := n.checkx(p); err == nil || !strings.Contains(err.Error(), "ingress limit on veth1: missing") {
		t.Errorf("CHECK without veth1's ingress redirect: %v", err)
	}
	if err := n.delx(p); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"clsact", "tbf", "ingress"} {
		if hasQdisc(t, n.host, "eth2", kind) {
			t.Errorf("the ENI back on the host has a %s qdisc", kind)
		}
	}
	if ls, _ := n.pod.LinkList(); len(ls) != 1 {
		t.Errorf("pod after DEL has %d links, want lo only (no ifb)", len(ls))
	}
	// A later pod without limits gets none.
	if _, err := n.add(n.xpod()); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"eth0", ExclusiveVeth} {
		if hasQdisc(t, n.pod, l, "clsact") {
			t.Errorf("an unlimited pod's %s has a clsact qdisc", l)
		}
	}
	mustNotExist(t, n.pod, IfbIngress)
	mustNotExist(t, n.pod, IfbEgress)
	if err := n.checkx(n.xpod()); err != nil {
		t.Errorf("CHECK of the unlimited pod: %v", err)
	}
}

// ReturnENI alone (the plugin's DEL and its undo of a failed ADD) removes the shaping too.
func TestExclusiveReturnENIUnshapes(t *testing.T) {
	n := newExclusiveNet(t)
	p := n.xpod()
	p.Bandwidth = xLimits
	if _, err := n.add(p); err != nil {
		t.Fatal(err)
	}
	var err error
	n.inHost(func() { err = ReturnENI(p) })
	if err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, n.pod, IfbIngress)
	mustNotExist(t, n.pod, IfbEgress)
	if hasQdisc(t, n.pod, ExclusiveVeth, "clsact") || hasQdisc(t, n.host, "eth2", "clsact") {
		t.Error("a clsact qdisc left after ReturnENI")
	}
}

// A failure at the bandwidth step (or a limit the kernel refuses) leaves nothing: the ENI back on the host
// without qdiscs, the pod's namespace empty.
func TestExclusiveShapedRollsBack(t *testing.T) {
	n := newExclusiveNet(t)
	stepHook = func(s string) error {
		if s == stepBandwidth {
			return errInjected
		}
		return nil
	}
	defer func() { stepHook = nil }()
	p := n.xpod()
	p.Bandwidth = xLimits
	if _, err := n.add(p); err == nil || !strings.Contains(err.Error(), stepBandwidth) {
		t.Fatalf("ADD failing at %q: %v", stepBandwidth, err)
	}
	if l := linkByName(t, n.host, "eth2"); l.Attrs().Alias != "" || hasQdisc(t, n.host, "eth2", "clsact") {
		t.Errorf("eth2 after the rollback: alias %q, clsact %v", l.Attrs().Alias, hasQdisc(t, n.host, "eth2", "clsact"))
	}
	if ls, _ := n.pod.LinkList(); len(ls) != 1 {
		t.Errorf("pod after the rollback has %d links, want lo only", len(ls))
	}
	mustNotExist(t, n.host, HostVethName(p.ContainerID, "eth0"))
	stepHook = nil
	bad := n.xpod()
	bad.Bandwidth = bandwidth.Limits{IngressRate: bandwidth.MinRate, IngressBurst: 1}
	if _, err := n.add(bad); err == nil || !strings.Contains(err.Error(), "ingress rate 1000 bit/s") {
		t.Fatalf("ADD at 1 kbit/s: %v", err)
	}
	if _, err := n.host.LinkByName("eth2"); err != nil {
		t.Errorf("the ENI after a refused ADD: %v", err)
	}
}
