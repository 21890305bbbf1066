package datapath

import (
	"net/netip"
	"strings"
	"testing"
)

func TestHostVethName(t *testing.T) {
	seen := map[string]string{}
	for _, c := range []struct{ id, ifn string }{
		{"c1", "eth0"}, {"c1", "eth1"}, {"c2", "eth0"}, {"", "eth0"},
		{strings.Repeat("f", 64), "eth0"}, {strings.Repeat("f", 63) + "e", "eth0"}, {"c1eth0", ""},
	} {
		n := HostVethName(c.id, c.ifn)
		if len(n) > 15 || !isHostVethName(n) {
			t.Errorf("HostVethName(%q, %q) = %q: want wen + 12 hex, at most 15 bytes", c.id, c.ifn, n)
		}
		if again := HostVethName(c.id, c.ifn); again != n {
			t.Errorf("HostVethName(%q, %q) not deterministic: %q then %q", c.id, c.ifn, n, again)
		}
		key := c.id + "|" + c.ifn
		if prev, dup := seen[n]; dup {
			t.Errorf("HostVethName: %q and %q both give %q", prev, key, n)
		}
		seen[n] = key
	}
	// sha256("c1/eth0"), computed independently: the name is part of the host's state across upgrades.
	if got, want := HostVethName("c1", "eth0"), "wend72e032fedd9"; got != want {
		t.Errorf("HostVethName(c1, eth0) = %q, want %q", got, want)
	}
	for _, n := range []string{"wen", "wen0123456789ab0", "wen0123456789aG", "eth0123456789ab", "wen0123456789AB"} {
		if isHostVethName(n) {
			t.Errorf("isHostVethName(%q) = true", n)
		}
	}
}

func TestPodValidate(t *testing.T) {
	ok := Pod{ContainerID: "c1", Netns: "/run/netns/x", IfName: "eth0", IP: netip.MustParseAddr("10.0.0.5"), Table: 1003}
	if err := ok.withDefaults().validate(true); err != nil {
		t.Fatalf("valid pod: %v", err)
	}
	cases := []struct {
		name string
		mod  func(*Pod)
		want string // a part of the error naming the field
	}{
		{"no container", func(p *Pod) { p.ContainerID = "" }, "ContainerID"},
		{"no netns", func(p *Pod) { p.Netns = "" }, "Netns"},
		{"no ifname", func(p *Pod) { p.IfName = "" }, "IfName"},
		{"long ifname", func(p *Pod) { p.IfName = "eth0123456789abc" }, "IfName"},
		{"slash ifname", func(p *Pod) { p.IfName = "a/b" }, "IfName"},
		{"colon ifname", func(p *Pod) { p.IfName = "eth0:1" }, "IfName"},
		{"space ifname", func(p *Pod) { p.IfName = "eth 0" }, "IfName"},
		{"dot ifname", func(p *Pod) { p.IfName = ".." }, "IfName"},
		{"no ip", func(p *Pod) { p.IP = netip.Addr{} }, "IP"},
		{"ipv6", func(p *Pod) { p.IP = netip.MustParseAddr("fd00::5") }, "IP"},
		{"4in6", func(p *Pod) { p.IP = netip.MustParseAddr("::ffff:10.0.0.5") }, "IP"},
		{"gateway ip", func(p *Pod) { p.IP = netip.MustParseAddr(GatewayV4) }, "IP"},
		{"unspecified ip", func(p *Pod) { p.IP = netip.MustParseAddr("0.0.0.0") }, "IP"},
		{"table 0", func(p *Pod) { p.Table = 0 }, "Table 0"},
		{"table main", func(p *Pod) { p.Table = 254 }, "Table 254"},
		{"table local", func(p *Pod) { p.Table = 255 }, "Table 255"},
		{"table default", func(p *Pod) { p.Table = 253 }, "Table 253"},
		{"table too big", func(p *Pod) { p.Table = 1 << 32 }, "Table 4294967296"},
		{"table negative", func(p *Pod) { p.Table = -1 }, "Table -1"},
		{"mtu small", func(p *Pod) { p.MTU = 67 }, "MTU 67"},
		{"mtu big", func(p *Pod) { p.MTU = 65536 }, "MTU 65536"},
		{"to-pod 0", func(p *Pod) { p.Rules = Rules{ToPod: 0, FromPod: 2048} }, "Rules.ToPod 0"},
		{"from-pod main", func(p *Pod) { p.Rules = Rules{ToPod: 512, FromPod: 32766} }, "Rules.FromPod 32766"},
		{"same priority", func(p *Pod) { p.Rules = Rules{ToPod: 600, FromPod: 600} }, "Rules.ToPod 600, Rules.FromPod 600"},
		{"from before to", func(p *Pod) { p.Rules = Rules{ToPod: 3000, FromPod: 2048} }, "ToPod below FromPod"},
	}
	for _, c := range cases {
		p := ok
		c.mod(&p)
		err := p.withDefaults().validate(true)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one naming %q", c.name, err, c.want)
		}
	}
	// Edges that are valid.
	for _, mod := range []func(*Pod){
		func(p *Pod) { p.Table = 1 }, func(p *Pod) { p.Table = 252 }, func(p *Pod) { p.Table = 256 },
		func(p *Pod) { p.Table = 0xFFFFFFFF }, func(p *Pod) { p.MTU = 68 }, func(p *Pod) { p.MTU = 65535 },
		func(p *Pod) { p.Rules = Rules{ToPod: 1, FromPod: 32765} }, func(p *Pod) { p.IfName = "eth0123456789ab" },
	} {
		p := ok
		mod(&p)
		if err := p.withDefaults().validate(true); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
	// Del needs only what identifies the datapath.
	del := Pod{ContainerID: "c1", IfName: "eth0"}
	if err := del.withDefaults().validate(false); err != nil {
		t.Errorf("Del without netns, IP, table: %v", err)
	}
	del.IP = netip.MustParseAddr("fd00::1")
	if err := del.withDefaults().validate(false); err == nil || !strings.Contains(err.Error(), "IP") {
		t.Errorf("Del with an IPv6 IP: err %v, want one naming IP", err)
	}
	// Errors come all at once.
	err := Pod{}.validate(true)
	for _, f := range []string{"ContainerID", "IfName", "Rules.ToPod", "IP", "Netns", "Table"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("zero Pod: err %v, want it to name %s", err, f)
		}
	}
}

func TestENILinkValidate(t *testing.T) {
	ok := ENILink{MAC: []byte{2, 0, 0, 0, 0, 1}, Gateway: netip.MustParseAddr("10.0.0.253"),
		CIDR: netip.MustParsePrefix("10.0.0.0/24"), Table: 1003}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mod  func(*ENILink)
		want string
	}{
		{func(e *ENILink) { e.MAC = nil }, "MAC"},
		{func(e *ENILink) { e.MAC = make([]byte, 6) }, "MAC"},
		{func(e *ENILink) { e.Gateway = netip.Addr{} }, "Gateway"},
		{func(e *ENILink) { e.Gateway = netip.MustParseAddr("10.0.1.253") }, "outside CIDR"},
		{func(e *ENILink) { e.CIDR = netip.Prefix{} }, "CIDR"},
		{func(e *ENILink) { e.CIDR = netip.MustParsePrefix("10.0.0.1/24") }, "CIDR"},
		{func(e *ENILink) { e.CIDR = netip.MustParsePrefix("fd00::/64") }, "CIDR"},
		{func(e *ENILink) { e.Table = 254 }, "Table 254"},
		{func(e *ENILink) { e.MTU = 20 }, "MTU 20"},
	} {
		e := ok
		c.mod(&e)
		if err := e.validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want one naming %q", e, err, c.want)
		}
	}
}

func TestTableFor(t *testing.T) {
	if got := TableFor(1000, 3); got != 1003 {
		t.Errorf("TableFor(1000, 3) = %d, want 1003", got)
	}
}
