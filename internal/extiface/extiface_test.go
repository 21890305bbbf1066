package extiface

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/internal/testenv"
)

// inFreshNetns runs fn on a thread moved into a new, empty network namespace holding a veth pair
// (eth0 10.9.0.2/24 + fd00:9::2/64, peer eth1 10.8.0.2/24) and a default route via eth0.
func inFreshNetns(t *testing.T, fn func()) {
	t.Helper()
	ns, _ := testenv.NewNetns(t)
	// Setup errors are returned, not t.Fatal'ed: this runs on the namespace's goroutine, not the test's.
	setup := func() error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", MTU: 1400}, PeerName: "eth1"}); err != nil {
			return err
		}
		for name, addrs := range map[string][]string{"eth0": {"10.9.0.2/24", "fd00:9::2/64"}, "eth1": {"10.8.0.2/24"}} {
			l, err := netlink.LinkByName(name)
			if err != nil {
				return err
			}
			for _, a := range addrs {
				ad, _ := netlink.ParseAddr(a)
				ad.Flags = 0x80 // IFA_F_NODAD: no duplicate address detection delay for the IPv6 address
				if err := netlink.AddrAdd(l, ad); err != nil {
					return err
				}
			}
			if err := netlink.LinkSetUp(l); err != nil {
				return err
			}
		}
		eth0, _ := netlink.LinkByName("eth0")
		return netlink.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.ParseIP("10.9.0.1")})
	}
	testenv.InNetns(t, ns, func() {
		if err := setup(); err != nil {
			t.Errorf("setup: %v", err)
			return
		}
		fn()
	})
}

func TestLookup(t *testing.T) {
	inFreshNetns(t, func() {
		cases := []struct {
			name    string
			o       Options
			iface   string
			v4, ext string
			v6      string
			err     string
		}{
			{name: "default route", o: Options{EnableIPv4: true}, iface: "eth0", v4: "10.9.0.2", ext: "10.9.0.2"},
			{name: "by name", o: Options{Ifaces: []string{"eth1"}, EnableIPv4: true}, iface: "eth1", v4: "10.8.0.2", ext: "10.8.0.2"},
			{name: "by address", o: Options{Ifaces: []string{"10.8.0.2"}, EnableIPv4: true}, iface: "eth1", v4: "10.8.0.2", ext: "10.8.0.2"},
			{name: "first usable of several", o: Options{Ifaces: []string{"nope0", "eth1"}, EnableIPv4: true}, iface: "eth1", v4: "10.8.0.2", ext: "10.8.0.2"},
			{name: "regex on address", o: Options{IfaceRegex: []string{`^10\.8\.`}, EnableIPv4: true}, iface: "eth1", v4: "10.8.0.2", ext: "10.8.0.2"},
			{name: "regex on name", o: Options{IfaceRegex: []string{`^eth1$`}, EnableIPv4: true}, iface: "eth1", v4: "10.8.0.2", ext: "10.8.0.2"},
			{name: "can reach", o: Options{CanReach: "10.8.0.77", EnableIPv4: true}, iface: "eth1", v4: "10.8.0.2", ext: "10.8.0.2"},
			{name: "public ip", o: Options{Ifaces: []string{"eth0"}, PublicIP: "192.0.2.7", EnableIPv4: true}, iface: "eth0", v4: "10.9.0.2", ext: "192.0.2.7"},
			{name: "dual stack", o: Options{Ifaces: []string{"eth0"}, EnableIPv4: true, EnableIPv6: true}, iface: "eth0", v4: "10.9.0.2", ext: "10.9.0.2", v6: "fd00:9::2"},
			{name: "no v6 address", o: Options{Ifaces: []string{"eth1"}, EnableIPv6: true}, err: "no global IPv6 address"},
			{name: "missing iface", o: Options{Ifaces: []string{"nope0"}, EnableIPv4: true}, err: `--iface`},
			{name: "bad regex", o: Options{IfaceRegex: []string{"("}, EnableIPv4: true}, err: "--iface-regex"},
			{name: "bad public ip", o: Options{PublicIP: "fd00::1", EnableIPv4: true}, err: "--public-ip"},
		}
		for _, c := range cases {
			ei, err := Lookup(c.o)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("%s: err = %v, want one containing %q", c.name, err, c.err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			if ei.Iface.Name != c.iface || ei.IfaceAddr.String() != orInvalid(c.v4) || ei.ExtAddr.String() != orInvalid(c.ext) {
				t.Errorf("%s: got %s %v ext %v", c.name, ei.Iface.Name, ei.IfaceAddr, ei.ExtAddr)
			}
			if c.v6 != "" && ei.IfaceV6 != netip.MustParseAddr(c.v6) {
				t.Errorf("%s: IPv6 %v, want %s", c.name, ei.IfaceV6, c.v6)
			}
		}
	})
}

func orInvalid(s string) string {
	if s == "" {
		return netip.Addr{}.String()
	}
	return s
}
