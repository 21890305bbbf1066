package datapath

import (
	"math"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/internal/bandwidth"
)

// 15.625 psched ticks per microsecond: /proc/net/psched "000003e8 00000040 000f4240 3b9aca00" (1 tick = 64 ns).
const testTicks = 15.625

func TestTBFFor(t *testing.T) {
	for _, c := range []struct {
		name        string
		rate, burst uint64
		mtu         int
		want        tbfParams
	}{
		// containerd's burst (512 MiB) capped to 1 s of the rate; the queue 50 ms of it plus a GSO packet.
		{"40M as containerd asks", 40e6, bandwidth.RuntimeBurst, 1500,
			tbfParams{Rate: 5e6, Bucket: 5e6, Buffer: 15625000, Limit: 250000 + 65536}},
		{"a burst below 1 s is honoured", 40e6, 8 * 100000, 1500,
			tbfParams{Rate: 5e6, Bucket: 100000, Buffer: 312500, Limit: 250000 + 65536}},
		{"a tiny burst is raised to 4 frames", 40e6, 8, 1500,
			tbfParams{Rate: 5e6, Bucket: 4 * 1514, Buffer: 18925, Limit: 250000 + 4*1514}},
		{"jumbo frames raise the floor", 40e6, 8, 9000,
			tbfParams{Rate: 5e6, Bucket: 4 * 9014, Buffer: 112675, Limit: 250000 + 4*9014}},
		// 1 Mbit/s: 1 s is 125000 bytes.
		{"1M", 1e6, bandwidth.RuntimeBurst, 1500,
			tbfParams{Rate: 125000, Bucket: 125000, Buffer: 15625000, Limit: 6250 + 65536}},
		// 10 kbit/s: 4 frames are 4.8 s of tokens, more than the kernel keeps: 4 s.
		{"10k: the floor capped at 4 s", 10000, bandwidth.RuntimeBurst, 1500,
			tbfParams{Rate: 1250, Bucket: 5000, Buffer: 62500000, Limit: 62 + 5000}},
		{"the least shapable rate", 3032, bandwidth.RuntimeBurst, 1500,
			tbfParams{Rate: 379, Bucket: 1516, Buffer: 62500000, Limit: 18 + 1516}},
		// 1P: containerd's 512 MiB is less than 1 s (4.3 us), the queue capped at 4 GiB.
		{"1P", bandwidth.MaxRate, bandwidth.RuntimeBurst, 1500,
			tbfParams{Rate: 125e12, Bucket: 536870911, Buffer: 67, Limit: math.MaxUint32}},
	} {
		got, err := tbfFor(c.rate, c.burst, c.mtu, testTicks)
		if err != nil || got != c.want {
			t.Errorf("%s: %+v %v, want %+v", c.name, got, err, c.want)
		}
		// The kernel keeps at most 2^32 ns of tokens: the bucket stays below it, and holds a full frame.
		if ns := float64(got.Buffer) * 64; ns >= math.MaxUint32 {
			t.Errorf("%s: buffer %d ticks = %.0f ns, beyond the kernel's cap", c.name, got.Buffer, ns)
		}
		if got.Bucket < uint64(c.mtu+14) && err == nil {
			t.Errorf("%s: bucket %d holds no full frame", c.name, got.Bucket)
		}
	}
}

func TestTBFForRefuses(t *testing.T) {
	if MinShapingRate(1500) != 3032 || MinShapingRate(9000) != 18032 {
		t.Errorf("MinShapingRate 1500: %d, 9000: %d", MinShapingRate(1500), MinShapingRate(9000))
	}
	for _, c := range []struct {
		rate  uint64
		mtu   int
		ticks float64
		want  string
	}{
		{1000, 1500, testTicks, "rate 1000 bit/s: below 3032 bit/s"},
		{3031, 1500, testTicks, "below 3032"},
		{10000, 9000, testTicks, "below 18032 bit/s, the least a tbf shapes at MTU 9000"},
		{40e6, 1500, 0, "psched ticks"},
		{40e6, 1500, math.NaN(), "psched ticks"},
		{40e6, 1500, 1e6, "psched ticks, want 1.."},
	} {
		_, err := tbfFor(c.rate, bandwidth.RuntimeBurst, c.mtu, c.ticks)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("rate %d mtu %d ticks %v: %v, want %q", c.rate, c.mtu, c.ticks, err, c.want)
		}
	}
}

func TestValidateBandwidth(t *testing.T) {
	p := Pod{ContainerID: "c", Netns: "/x", IfName: "eth0", IP: gatewayV4.Next(), Table: 1001, MTU: 1500}
	for _, c := range []struct {
		bw   bandwidth.Limits
		want string
	}{
		{bandwidth.Limits{IngressRate: 40e6}, "ingressRate 40000000 without ingressBurst"},
		{bandwidth.Limits{EgressRate: 2000, EgressBurst: 8}, "Bandwidth: egress rate 2000 bit/s: below 3032"},
		{bandwidth.Limits{IngressRate: 2e15, IngressBurst: 8}, "ingressRate 2000000000000000"},
	} {
		p.Bandwidth = c.bw
		err := p.validate(true)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.bw, err, c.want)
		}
	}
}

// limitedPod is the test pod limited both ways as containerd asks: 40 Mbit/s in, 20 Mbit/s out.
func (n *testNet) limitedPod() Pod {
	p := n.testPod()
	p.Bandwidth = bandwidth.Limits{IngressRate: 40e6, IngressBurst: bandwidth.RuntimeBurst, EgressRate: 20e6, EgressBurst: bandwidth.RuntimeBurst}
	return p
}

func rootQdisc(t *testing.T, h *netlink.Handle, name string) netlink.Qdisc {
	t.Helper()
	qs, err := h.QdiscList(linkByName(t, h, name))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Attrs().Parent == netlink.HANDLE_ROOT {
			return q
		}
	}
	return nil
}

func TestAddShapes(t *testing.T) {
	n := newTestNet(t)
	p := n.limitedPod()
	if _, err := n.add(p); err != nil {
		t.Fatal(err)
	}
	veth := HostVethName(p.ContainerID, p.IfName)
	for _, c := range []struct {
		what string
		h    *netlink.Handle
		link string
		rate uint64
	}{{"ingress", n.host, veth, 5e6}, {"egress", n.pod, "eth0", 2.5e6}} {
		q, ok := rootQdisc(t, c.h, c.link).(*netlink.Tbf)
		if !ok || q.Handle != ShapingHandle || q.Rate != c.rate {
			t.Errorf("%s: root qdisc of %s %+v, want tbf 57: rate %d bytes/s", c.what, c.link, q, c.rate)
			continue
		}
		want, _ := tbfFor(c.rate*8, bandwidth.RuntimeBurst, 1400, netlink.TickInUsec())
		if q.Buffer != want.Buffer || q.Limit != want.Limit {
			t.Errorf("%s: tbf buffer %d limit %d, want %d %d", c.what, q.Buffer, q.Limit, want.Buffer, want.Limit)
		}
	}
	if err := n.check(p); err != nil {
		t.Fatalf("Check: %v", err)
	}
	// Del takes the qdiscs with the veth; nothing of the pod stays.
	if err := n.del(p); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, n.host, veth)
}

func TestAddShapesTheRangesEnds(t *testing.T) {
	n := newTestNet(t)
	p := n.testPod()
	// 1P needs the kernel's 64-bit rate; the lowest rate a 1400-byte MTU allows has the longest bucket.
	low := MinShapingRate(1400)
	p.Bandwidth = bandwidth.Limits{IngressRate: bandwidth.MaxRate, IngressBurst: bandwidth.MaxBurst, EgressRate: low, EgressBurst: 1}
	if _, err := n.add(p); err != nil {
		t.Fatal(err)
	}
	if err := n.check(p); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if q, ok := rootQdisc(t, n.host, HostVethName(p.ContainerID, p.IfName)).(*netlink.Tbf); !ok || q.Rate != bandwidth.MaxRate/8 {
		t.Errorf("1P: %+v", q)
	}
}

func TestAddUnlimitedAddsNoQdisc(t *testing.T) {
	n := newTestNet(t)
	p := n.testPod()
	if _, err := n.add(p); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		h    *netlink.Handle
		link string
	}{{n.host, HostVethName(p.ContainerID, p.IfName)}, {n.pod, "eth0"}} {
		if q := rootQdisc(t, c.h, c.link); q != nil && q.Attrs().Handle == ShapingHandle {
			t.Errorf("%s: %v on an unlimited pod", c.link, q)
		}
	}
}

// TestAddRollbackShaped fails a shaped Add at the bandwidth step and at every step after it: both namespaces are
// as before.
func TestAddRollbackShaped(t *testing.T) {
	for _, step := range []string{stepBandwidth, stepForward, stepHostRoute, stepRuleToPod, stepRuleFromPod} {
		t.Run(strings.ReplaceAll(step, " ", "_"), func(t *testing.T) {
			n := newTestNet(t)
			hostBefore, podBefore := dump(t, n.host), dump(t, n.pod)
			stepHook = func(s string) error {
				if s == step {
					return errInjected
				}
				return nil
			}
			defer func() { stepHook = nil }()
			if _, err := n.add(n.limitedPod()); err == nil || !strings.Contains(err.Error(), step) {
				t.Fatalf("Add failing at %q: %v", step, err)
			}
			sameDump(t, "host netns after the rollback", hostBefore, dump(t, n.host))
			sameDump(t, "pod netns after the rollback", podBefore, dump(t, n.pod))
		})
	}
}

func TestAddRefusesUnshapableRate(t *testing.T) {
	n := newTestNet(t)
	p := n.testPod()
	p.Bandwidth = bandwidth.Limits{EgressRate: bandwidth.MinRate, EgressBurst: bandwidth.RuntimeBurst}
	hostBefore, podBefore := dump(t, n.host), dump(t, n.pod)
	if _, err := n.add(p); err == nil || !strings.Contains(err.Error(), "egress rate 1000 bit/s: below") {
		t.Fatalf("Add at 1 kbit/s: %v, want a refusal naming the rate", err)
	}
	sameDump(t, "host netns", hostBefore, dump(t, n.host))
	sameDump(t, "pod netns", podBefore, dump(t, n.pod))
}

func TestCheckNamesShapingProblem(t *testing.T) {
	for _, c := range []struct {
		name  string
		brk   func(t *testing.T, n *testNet, p *Pod)
		wants string
	}{
		{"ingress qdisc removed", func(t *testing.T, n *testNet, p *Pod) {
			q := rootQdisc(t, n.host, HostVethName(p.ContainerID, p.IfName))
			if err := n.host.QdiscDel(q); err != nil {
				t.Fatal(err)
			}
		}, "ingress limit on " + HostVethName("0123456789abcdef", "eth0") + ": missing"},
		{"egress qdisc removed", func(t *testing.T, n *testNet, p *Pod) {
			if err := n.pod.QdiscDel(rootQdisc(t, n.pod, "eth0")); err != nil {
				t.Fatal(err)
			}
		}, "egress limit on eth0: missing"},
		{"egress qdisc replaced by someone else's", func(t *testing.T, n *testNet, p *Pod) {
			l := linkByName(t, n.pod, "eth0")
			q := &netlink.Tbf{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(1, 0),
				Parent: netlink.HANDLE_ROOT}, Rate: 2.5e6, Buffer: 1000000, Limit: 100000}
			if err := n.pod.QdiscReplace(q); err != nil {
				t.Fatal(err)
			}
		}, "egress limit on eth0: missing"},
		{"ingress rate changed", func(t *testing.T, n *testNet, p *Pod) {
			q := rootQdisc(t, n.host, HostVethName(p.ContainerID, p.IfName)).(*netlink.Tbf)
			q.Rate = 1e6
			if err := n.host.QdiscReplace(q); err != nil {
				t.Fatal(err)
			}
		}, "ingress limit on " + HostVethName("0123456789abcdef", "eth0") + ": tbf rate 1000000 bytes/s"},
		{"the pod asks for another limit", func(t *testing.T, n *testNet, p *Pod) {
			p.Bandwidth.EgressRate = 30e6
		}, "want rate 3750000"},
		{"the pod asks for none", func(t *testing.T, n *testNet, p *Pod) {
			p.Bandwidth = bandwidth.Limits{}
		}, "ingress limit on " + HostVethName("0123456789abcdef", "eth0") + ": a tbf 57:0 of weft's, but the pod asks for none"},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			n := newTestNet(t)
			p := n.limitedPod()
			if _, err := n.add(p); err != nil {
				t.Fatal(err)
			}
			if err := n.check(p); err != nil {
				t.Fatalf("Check before breaking: %v", err)
			}
			c.brk(t, n, &p)
			err := n.check(p)
			if err == nil || !strings.Contains(err.Error(), c.wants) {
				t.Fatalf("Check with the %s: %v, want it to say %q", c.name, err, c.wants)
			}
		})
	}
}
