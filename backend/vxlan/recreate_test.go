package vxlan

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/backend/backendtest"
)

// A vxlan device deleted by hand while the backend runs is recreated by the next resync with the MAC the lease
// publishes, its address, and the peers' entries.
func TestDeletedDeviceIsRecreatedWithItsMAC(t *testing.T) {
	n := backendtest.NewNode(t, "10.9.0.2/24", "fd00:9::2/64")
	f := fake(t, `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/56","Backend":{"Type":"vxlan"}}`)
	nw := start(t, n, f)
	p := peer("10.5.7.0/24", "10.9.0.7", "0e:00:00:00:00:07")
	p.EnableIPv6, p.IPv6Subnet = true, netip.MustParsePrefix("fd00:5:0:7::/64")
	p.Attrs.PublicIPv6 = netip.MustParseAddr("fd00:9::7")
	p.Attrs.BackendV6Data = json.RawMessage(`{"VNI":1,"VtepMAC":"0e:00:00:00:01:07"}`)
	f.AddLease(p)
	lease := nw.Outputs().Lease
	published := map[string]string{"flannel.1": macFrom(lease.Attrs.BackendData).String(),
		"flannel-v6.1": macFrom(lease.Attrs.BackendV6Data).String()}
	own := map[string]string{"flannel.1": lease.Subnet.Masked().Addr().String() + "/32",
		"flannel-v6.1": lease.IPv6Subnet.Masked().Addr().String() + "/128"}
	state := func(name string, fam int, route, neigh, fdb string) func() (bool, string) {
		return func() (bool, string) {
			l, err := n.H.LinkByName(name)
			if err != nil {
				return false, err.Error()
			}
			if got := l.Attrs().HardwareAddr.String(); got != published[name] {
				return false, name + " MAC " + got + ", want the published " + published[name]
			}
			if l.Attrs().Flags&(1<<0) == 0 { // net.FlagUp
				return false, name + " is down"
			}
			addrs, _ := n.H.AddrList(l, fam)
			found := false
			for _, a := range addrs {
				found = found || a.IPNet.String() == own[name]
			}
			if !found {
				return false, name + " lacks " + own[name]
			}
			idx := l.Attrs().Index
			if ok, m := same(n.Routes(t, fam, idx), []string{route}); !ok {
				return false, "routes " + m
			}
			if ok, m := same(n.Neighbours(t, idx, fam), []string{neigh}); !ok {
				return false, "neighbours " + m
			}
			return same(n.Neighbours(t, idx, unix.AF_BRIDGE), []string{fdb})
		}
	}
	v4 := state("flannel.1", unix.AF_INET, "10.5.7.0/24 via 10.5.7.0 dev flannel.1 onlink", "10.5.7.0 0e:00:00:00:00:07",
		"10.9.0.7 0e:00:00:00:00:07")
	v6 := state("flannel-v6.1", unix.AF_INET6, "fd00:5:0:7::/64 via fd00:5:0:7:: dev flannel-v6.1 onlink",
		"fd00:5:0:7:: 0e:00:00:00:01:07", "fd00:9::7 0e:00:00:00:01:07")
	eventually(t, "peer v4", v4)
	eventually(t, "peer v6", v6)
	for _, name := range []string{"flannel.1", "flannel-v6.1"} {
		l, err := n.H.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.H.LinkDel(l); err != nil {
			t.Fatal(err)
		}
		if _, err := n.H.LinkByName(name); err == nil {
			t.Fatalf("%s still there after delete", name)
		}
	}
	eventually(t, "flannel.1 recreated", v4)
	eventually(t, "flannel-v6.1 recreated", v6)
	if l, err := n.H.LinkByName("flannel.1"); err == nil {
		if vx, ok := l.(*netlink.Vxlan); !ok || vx.Port != 8472 || vx.VxlanId != 1 || vx.Learning || vx.MTU != 1450 {
			t.Errorf("recreated flannel.1: %+v", l)
		}
	}
}
