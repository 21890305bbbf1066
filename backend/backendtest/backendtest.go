// Package backendtest builds the fixtures backend tests share: a fresh namespace with a veth "eth0" acting as the
// external interface, and helpers to render kernel state as sorted text for assertions.
package backendtest

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/internal/testenv"
)

// Node is a test namespace with an external interface.
type Node struct {
	NS   netns.NsHandle
	H    *netlink.Handle
	Ext  *backend.ExternalInterface
	Link netlink.Link
}

// NewNode makes a namespace whose eth0 (MTU 1500) has v4 (e.g. "10.9.0.2/24") and optionally v6, with its veth
// peer eth0p kept in the same namespace and up, so eth0 has carrier. A privileged fixture: it skips under -short.
func NewNode(t *testing.T, v4, v6 string) *Node {
	t.Helper()
	if testing.Short() {
		t.Skip("privileged (network namespaces): skipped under -short")
	}
	ns, h := testenv.NewNetns(t)
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", MTU: 1500}, PeerName: "eth0p"}); err != nil {
		t.Fatal(err)
	}
	return Attach(t, ns, h, "eth0", v4, v6, "eth0p")
}

// Attach configures an existing link as a node's external interface.
func Attach(t *testing.T, ns netns.NsHandle, h *netlink.Handle, name, v4, v6, peer string) *Node {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	ext := &backend.ExternalInterface{Iface: &net.Interface{Index: l.Attrs().Index, Name: name, MTU: l.Attrs().MTU}}
	for _, a := range []string{v4, v6} {
		if a == "" {
			continue
		}
		ad, err := netlink.ParseAddr(a)
		if err != nil {
			t.Fatal(err)
		}
		ad.Flags = unix.IFA_F_NODAD
		if err := h.AddrAdd(l, ad); err != nil {
			t.Fatal(err)
		}
		p := netip.MustParsePrefix(a)
		if p.Addr().Is4() {
			ext.IfaceAddr, ext.ExtAddr = p.Addr(), p.Addr()
		} else {
			ext.IfaceV6, ext.ExtV6Addr = p.Addr(), p.Addr()
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	if peer != "" {
		if p, err := h.LinkByName(peer); err == nil {
			_ = h.LinkSetUp(p)
		}
	}
	return &Node{NS: ns, H: h, Ext: ext, Link: l}
}

// Routes renders the main-table routes of a family on the given link index (0 = any), sorted, kernel routes
// excluded: "10.5.2.0/24 via 10.5.2.0 dev flannel.1 onlink".
func (n *Node) Routes(t *testing.T, family, link int) []string {
	t.Helper()
	rs, err := n.H.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		if r.Protocol == unix.RTPROT_KERNEL || r.Dst == nil || (link != 0 && r.LinkIndex != link) {
			continue
		}
		s := r.Dst.String()
		if r.Gw != nil {
			s += " via " + r.Gw.String()
		}
		s += " dev " + n.linkName(t, r.LinkIndex)
		if r.Flags&unix.RTNH_F_ONLINK != 0 {
			s += " onlink"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Neighbours renders permanent neighbours of a family on link: "10.5.2.0 aa:bb:..".
func (n *Node) Neighbours(t *testing.T, link, family int) []string {
	t.Helper()
	ns, err := n.H.NeighList(link, family)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ns {
		if e.State&netlink.NUD_PERMANENT == 0 || e.IP == nil || e.HardwareAddr == nil {
			continue
		}
		if family == unix.AF_BRIDGE && e.HardwareAddr.String() == "00:00:00:00:00:00" {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s", e.IP, e.HardwareAddr))
	}
	sort.Strings(out)
	return out
}

// NeighTable renders every neighbour of a family on link, whatever its state, sorted:
// "10.5.2.0 lladdr 0e:00:00:00:00:02 PERMANENT" (an entry without a link-layer address has none).
func (n *Node) NeighTable(t *testing.T, link, family int) []string {
	t.Helper()
	ns, err := n.H.NeighList(link, family)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ns {
		s := fmt.Sprint(e.IP)
		if e.HardwareAddr != nil {
			s += " lladdr " + e.HardwareAddr.String()
		}
		out = append(out, s+" "+nudString(e.State))
	}
	sort.Strings(out)
	return out
}

// FDB renders the forwarding database of a vxlan device, sorted: "0e:00:00:00:00:07 dst 10.9.0.7 self permanent".
func (n *Node) FDB(t *testing.T, link int) []string {
	t.Helper()
	ns, err := n.H.NeighList(link, unix.AF_BRIDGE)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ns {
		s := e.HardwareAddr.String()
		if e.IP != nil {
			s += " dst " + e.IP.String()
		}
		if e.Flags&netlink.NTF_SELF != 0 {
			s += " self"
		}
		out = append(out, s+" "+strings.ToLower(nudString(e.State)))
	}
	sort.Strings(out)
	return out
}

// nudString names neighbour states as ip-neigh(8) does.
func nudString(state int) string {
	names := []struct {
		bit  int
		name string
	}{{netlink.NUD_INCOMPLETE, "INCOMPLETE"}, {netlink.NUD_REACHABLE, "REACHABLE"}, {netlink.NUD_STALE, "STALE"},
		{netlink.NUD_DELAY, "DELAY"}, {netlink.NUD_PROBE, "PROBE"}, {netlink.NUD_FAILED, "FAILED"},
		{netlink.NUD_NOARP, "NOARP"}, {netlink.NUD_PERMANENT, "PERMANENT"}}
	var out []string
	for _, s := range names {
		if state&s.bit != 0 {
			out = append(out, s.name)
		}
	}
	if len(out) == 0 {
		return "NONE"
	}
	return strings.Join(out, ",")
}

func (n *Node) linkName(t *testing.T, idx int) string {
	l, err := n.H.LinkByIndex(idx)
	if err != nil {
		return fmt.Sprint(idx)
	}
	return l.Attrs().Name
}

// Equal fails the test with a readable diff when got != want.
func Equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
