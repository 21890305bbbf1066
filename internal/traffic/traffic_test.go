package traffic

import (
	"context"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/weftnet/weft/internal/testenv"
)

// privilegedNetns gives a privileged test a fresh network namespace. It skips under -short (the unit tier) and,
// through testenv.RequireRoot, fails rather than skips in CI without root.
func privilegedNetns(t *testing.T) netns.NsHandle {
	t.Helper()
	if testing.Short() {
		t.Skip("privileged: needs root and a network namespace; not run under -short")
	}
	ns, _ := testenv.NewNetns(t)
	return ns
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// saved returns the flannel lines of iptables-save for a table, as a flanneld node shows them.
func saved(t *testing.T, prog, table string) string {
	t.Helper()
	var keep []string
	for _, l := range strings.Split(run(t, prog, "-t", table), "\n") {
		if strings.Contains(l, "FLANNEL") || strings.Contains(l, "flanneld") {
			keep = append(keep, counters.ReplaceAllString(l, "[0:0]"))
		}
	}
	return strings.Join(keep, "\n")
}

const wantNAT = `:FLANNEL-POSTRTG - [0:0]
-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`

const wantFilter = `:FLANNEL-FWD - [0:0]
-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT
-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT`

func opts() Options {
	return Options{Network: netip.MustParsePrefix("10.244.0.0/16"), Subnet: netip.MustParsePrefix("10.244.1.0/24"),
		Masquerade: true, Forward: true}
}

func TestIPTablesRulesRepairAndSubnetChange(t *testing.T) {
	ns := privilegedNetns(t)
	testenv.InNetns(t, ns, func() {
		m, err := New(opts())
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ { // twice: no duplicates
			if err := m.Ensure(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if got := saved(t, "iptables-save", "nat"); got != wantNAT {
			t.Fatalf("nat:\n%s\nwant:\n%s", got, wantNAT)
		}
		if got := saved(t, "iptables-save", "filter"); got != wantFilter {
			t.Fatalf("filter:\n%s\nwant:\n%s", got, wantFilter)
		}
		// Hand damage is repaired by one resync.
		run(t, "iptables", "-t", "nat", "-D", "FLANNEL-POSTRTG", "3")
		run(t, "iptables", "-t", "nat", "-D", "POSTROUTING", "1")
		run(t, "iptables", "-F", "FLANNEL-FWD")
		if err := m.Ensure(context.Background()); err != nil {
			t.Fatal(err)
		}
		if saved(t, "iptables-save", "nat") != wantNAT || saved(t, "iptables-save", "filter") != wantFilter {
			t.Fatalf("not repaired:\n%s\n%s", saved(t, "iptables-save", "nat"), saved(t, "iptables-save", "filter"))
		}
		// A new subnet replaces the old P rules.
		o := opts()
		o.Subnet = netip.MustParsePrefix("10.244.9.0/24")
		m2, _ := New(o)
		if err := m2.Ensure(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := saved(t, "iptables-save", "nat")
		if strings.Contains(got, "10.244.1.0/24") || strings.Count(got, "10.244.9.0/24") != 3 || strings.Count(got, "-j FLANNEL-POSTRTG") != 1 {
			t.Fatalf("after subnet change:\n%s", got)
		}
	})
}

func TestIPTablesVariants(t *testing.T) {
	ns := privilegedNetns(t)
	testenv.InNetns(t, ns, func() {
		o := opts()
		o.RandomFullyOff, o.Forward = true, false
		o.IPv6Network, o.IPv6Subnet = netip.MustParsePrefix("fd00:244::/56"), netip.MustParsePrefix("fd00:244:0:1::/64")
		m, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Ensure(context.Background()); err != nil {
			t.Fatal(err)
		}
		nat := saved(t, "iptables-save", "nat")
		if strings.Contains(nat, "random-fully") || !strings.Contains(nat, "-j MASQUERADE") {
			t.Errorf("random-fully not disabled:\n%s", nat)
		}
		if f := saved(t, "iptables-save", "filter"); f != "" {
			t.Errorf("forward rules written although disabled:\n%s", f)
		}
		nat6 := saved(t, "ip6tables-save", "nat")
		if !strings.Contains(nat6, "-A FLANNEL-POSTRTG -s fd00:244::/56 ! -d ff00::/8 -m comment --comment \"flanneld masq\" -j MASQUERADE") ||
			!strings.Contains(nat6, "! -s fd00:244::/56 -d fd00:244:0:1::/64") {
			t.Errorf("ip6tables nat:\n%s", nat6)
		}
	})
}

func TestNFTables(t *testing.T) {
	ns := privilegedNetns(t)
	testenv.LookPath(t, "nft")
	testenv.InNetns(t, ns, func() {
		o := opts()
		o.NFTables = true
		m, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if err := m.Ensure(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		out := run(t, "nft", "list", "table", "ip", "flannel-ipv4")
		for _, want := range []string{
			"chain postrtg", "type nat hook postrouting priority srcnat",
			"ip saddr 10.244.1.0/24 ip daddr 10.244.0.0/16 return",
			"ip saddr != 10.244.0.0/16 ip daddr 10.244.1.0/24 return",
			"ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random",
			"chain forward", "ip daddr 10.244.0.0/16 accept",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("nft table lacks %q:\n%s", want, out)
			}
		}
		if strings.Count(out, "masquerade") != 2 {
			t.Errorf("duplicate rules after two ensures:\n%s", out)
		}
		run(t, "nft", "flush", "chain", "ip", "flannel-ipv4", "postrtg")
		if err := m.Ensure(context.Background()); err != nil {
			t.Fatal(err)
		}
		if out := run(t, "nft", "list", "table", "ip", "flannel-ipv4"); strings.Count(out, "masquerade") != 2 {
			t.Errorf("flushed chain not repaired:\n%s", out)
		}
	})
}

// TestIPTablesOrderAndInPlaceChange damages the chain without changing its rule count: a rule moved below the
// MASQUERADE rules (so it no longer applies) and a rule replaced in place. Each is rewritten by one resync.
func TestIPTablesOrderAndInPlaceChange(t *testing.T) {
	ns := privilegedNetns(t)
	testenv.InNetns(t, ns, func() {
		m, err := New(opts())
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Ensure(context.Background()); err != nil {
			t.Fatal(err)
		}
		cm := []string{"-m", "comment", "--comment", masqComment}
		for _, damage := range []struct {
			name string
			cmds [][]string
		}{
			{"rule moved after the masquerade rules", [][]string{
				{"-t", "nat", "-D", postChain, "2"},
				append(append([]string{"-t", "nat", "-A", postChain, "-s", "10.244.1.0/24", "-d", "10.244.0.0/16"}, cm...), "-j", "RETURN"),
			}},
			{"rule replaced in place", [][]string{
				append(append([]string{"-t", "nat", "-R", postChain, "3", "-s", "10.244.0.0/16", "-d", "10.244.7.0/24"}, cm...), "-j", "RETURN"),
			}},
		} {
			for _, c := range damage.cmds {
				run(t, "iptables", c...)
			}
			if got := saved(t, "iptables-save", "nat"); got == wantNAT {
				t.Fatalf("%s: the damage did not change the chain", damage.name)
			}
			if err := m.Ensure(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := saved(t, "iptables-save", "nat"); got != wantNAT {
				t.Errorf("%s: not repaired:\n%s\nwant:\n%s", damage.name, got, wantNAT)
			}
		}
	})
}

// wantPostrtg is the postrtg chain for opts() with its pod subnet replaced by 10.244.2.0/24, as nft prints it.
const wantPostrtg = `table ip flannel-ipv4 {
	chain postrtg {
		type nat hook postrouting priority srcnat; policy accept;
		meta mark & 0x00004000 == 0x00004000 return
		ip saddr 10.244.2.0/24 ip daddr 10.244.0.0/16 return
		ip saddr 10.244.0.0/16 ip daddr 10.244.2.0/24 return
		ip saddr != 10.244.0.0/16 ip daddr 10.244.2.0/24 return
		ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random
		ip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random
	}
}
`

var nftHandle = regexp.MustCompile(`(?m)^\s*(.*\S) # handle (\d+)$`)

// nftRuleHandles returns the handles of a chain's rules, in order.
func nftRuleHandles(t *testing.T, chain string) []string {
	t.Helper()
	var hs []string
	for _, m := range nftHandle.FindAllStringSubmatch(run(t, "nft", "-a", "list", "chain", "ip", "flannel-ipv4", chain), -1) {
		if !strings.HasPrefix(m[1], "chain ") && !strings.HasPrefix(m[1], "table ") {
			hs = append(hs, m[2])
		}
	}
	return hs
}

// TestNFTablesSameCountChanges proves the nftables writer compares the rules, not their number: a new pod subnet
// gives as many rules as the old one, and so do a rule swapped with its neighbour or replaced in place.
func TestNFTablesSameCountChanges(t *testing.T) {
	ns := privilegedNetns(t)
	testenv.LookPath(t, "nft")
	testenv.InNetns(t, ns, func() {
		o := opts()
		o.NFTables, o.Forward = true, false
		old, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := old.Ensure(context.Background()); err != nil {
			t.Fatal(err)
		}
		o.Subnet = netip.MustParsePrefix("10.244.2.0/24")
		m, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Ensure(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := run(t, "nft", "list", "chain", "ip", "flannel-ipv4", "postrtg"); got != wantPostrtg {
			t.Fatalf("after the subnet changed to 10.244.2.0/24:\n%s\nwant:\n%s", got, wantPostrtg)
		}
		for _, damage := range []struct {
			name string
			cmds func(h []string) [][]string
		}{
			{"two rules swapped", func(h []string) [][]string {
				return [][]string{
					{"replace", "rule", "ip", "flannel-ipv4", "postrtg", "handle", h[1], "ip", "saddr", "10.244.0.0/16", "ip", "daddr", "10.244.2.0/24", "return"},
					{"replace", "rule", "ip", "flannel-ipv4", "postrtg", "handle", h[2], "ip", "saddr", "10.244.2.0/24", "ip", "daddr", "10.244.0.0/16", "return"},
				}
			}},
			{"rule replaced in place", func(h []string) [][]string {
				return [][]string{{"replace", "rule", "ip", "flannel-ipv4", "postrtg", "handle", h[3], "ip", "saddr", "!=", "10.244.0.0/16", "ip", "daddr", "10.244.7.0/24", "return"}}
			}},
		} {
			for _, c := range damage.cmds(nftRuleHandles(t, "postrtg")) {
				run(t, "nft", c...)
			}
			if got := run(t, "nft", "list", "chain", "ip", "flannel-ipv4", "postrtg"); got == wantPostrtg {
				t.Fatalf("%s: the damage did not change the chain", damage.name)
			}
			if err := m.Ensure(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := run(t, "nft", "list", "chain", "ip", "flannel-ipv4", "postrtg"); got != wantPostrtg {
				t.Errorf("%s: not repaired:\n%s\nwant:\n%s", damage.name, got, wantPostrtg)
			}
		}
	})
}
