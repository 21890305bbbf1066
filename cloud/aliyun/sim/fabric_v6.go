package sim

// The fabric's IPv6 side (the eni backend's dual stack): an ENI's IPv6 addresses become router host routes (/128)
// to the ENI's veth with permanent neighbour entries at the ENI's MAC, as its IPv4 addresses do, and the
// router-side end of each ENI veth carries its vSwitch's IPv6 gateway (::1 of the block, as /128), so the
// instance resolves the gateway through the ENI as it does on the vSwitch bridge. The vSwitch's bridge answers
// neighbour solicitations for the ENI IPv6 addresses (proxy NDP entries), as it answers ARP for the IPv4 ones, so a
// host of the same block reaches them through the router.

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// eniGateway6 is the IPv6 gateway of the ENI's vSwitch without its length ("" when the vSwitch has no IPv6 block).
func (f *Fabric) eniGateway6(e ENI) string {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	sw := f.w.vswitch(e.VSwitchID)
	if sw == nil {
		return ""
	}
	return strings.Split(gateway6(sw.IPv6CIDR), "/")[0]
}

// syncENIv6 gives the router-side veth of an ENI its vSwitch's IPv6 gateway (idempotent) and adds the ENI's IPv6
// addresses to the host routes and neighbours Sync installs.
func (f *Fabric) syncENIv6(h *netlink.Handle, l netlink.Link, e ENI, addRoute func(dst string), addNeigh func(ip string)) error {
	if len(e.IPv6) == 0 {
		return nil
	}
	gw := f.eniGateway6(e)
	if gw == "" {
		return fmt.Errorf("ENI %s has IPv6 addresses but its vSwitch %s has no IPv6 block", e.ID, e.VSwitchID)
	}
	a, err := netip.ParseAddr(gw)
	if err != nil {
		return err
	}
	want := &netlink.Addr{IPNet: host128Net(a), Flags: unix.IFA_F_NODAD}
	have, err := h.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		return fmt.Errorf("addresses of %s: %w", l.Attrs().Name, err)
	}
	found := false
	for _, x := range have {
		found = found || x.IPNet.String() == want.IPNet.String()
	}
	if !found {
		f.commands++
		if err := h.AddrAdd(l, want); err != nil {
			return fmt.Errorf("IPv6 gateway %s on %s: %w", gw, l.Attrs().Name, err)
		}
	}
	for _, ip := range e.IPv6 {
		addRoute(ip + "/128")
		addNeigh(ip)
	}
	return nil
}

func host128Net(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(128, 128)}
}

// neighFamily is the address family of a neighbour's address.
func neighFamily(ip string) int {
	if strings.Contains(ip, ":") {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// neighList46 lists a link's IPv4 and IPv6 neighbours.
func neighList46(h *netlink.Handle, idx int) ([]netlink.Neigh, error) {
	v4, err := h.NeighList(idx, unix.AF_INET)
	if err != nil {
		return nil, err
	}
	v6, err := h.NeighList(idx, unix.AF_INET6)
	return append(v4, v6...), err
}

// proxyNDPOn makes the bridge of every vSwitch with an IPv6 block answer neighbour solicitations for the
// addresses in its proxy table, at once (proxy_delay 0: a host of the block soliciting a pod's address gets its
// answer before its first ping times out). IPv4's proxy_arp answers for whatever the router routes elsewhere;
// IPv6 has no such mode: Sync lists each ENI IPv6 address on its vSwitch's bridge (syncProxyNDP).
func (f *Fabric) proxyNDPOn(sws []*VSwitch) error {
	for _, sw := range sws {
		br := f.bridges[sw.ID]
		if gateway6(sw.IPv6CIDR) == "" || br == "" {
			continue
		}
		for _, kv := range []string{"net.ipv6.conf." + br + ".proxy_ndp=1", "net.ipv6.neigh." + br + ".proxy_delay=0"} {
			if out, err := exec.Command("ip", "netns", "exec", f.Router, "sysctl", "-qw", kv).CombinedOutput(); err != nil {
				return fmt.Errorf("sysctl %s in %s: %v: %s", kv, f.Router, err, strings.TrimSpace(string(out)))
			}
		}
	}
	return nil
}

// proxyKey is one proxy neighbour entry: an address answered for on a bridge.
type proxyKey struct {
	link int
	ip   string
}

// syncProxyNDP makes the proxy neighbour entries of the vSwitch bridges exactly the IPv6 addresses of the InUse
// ENIs of each vSwitch (mu held): an ENI's IPv6 address is answered for on its own vSwitch's segment, an
// unassigned one no longer is.
func (f *Fabric) syncProxyNDP(h *netlink.Handle, enis []ENI) []error {
	var errs []error
	want := map[proxyKey]bool{}
	brIdx := map[string]int{} // bridge name -> index
	for _, br := range f.bridges {
		l, err := h.LinkByName(br)
		if err != nil {
			errs = append(errs, fmt.Errorf("bridge %s: %w", br, err))
			continue
		}
		brIdx[br] = l.Attrs().Index
	}
	for _, e := range enis {
		idx, ok := brIdx[f.bridges[e.VSwitchID]]
		if !ok {
			continue
		}
		for _, ip := range e.IPv6 {
			if a, err := netip.ParseAddr(ip); err == nil {
				want[proxyKey{idx, a.String()}] = true
			}
		}
	}
	for br, idx := range brIdx {
		cur, err := h.NeighProxyList(idx, unix.AF_INET6)
		if err != nil {
			errs = append(errs, fmt.Errorf("proxy neighbours of %s: %w", br, err))
			continue
		}
		for _, n := range cur {
			if n.LinkIndex != idx || n.Flags&netlink.NTF_PROXY == 0 {
				continue // the dump may hold other links' entries
			}
			k := proxyKey{idx, n.IP.String()}
			if want[k] {
				delete(want, k)
				continue
			}
			f.commands++
			n := n
			if err := h.NeighDel(&n); err != nil {
				errs = append(errs, fmt.Errorf("proxy neighbour %s on %s: %w", n.IP, br, err))
			}
		}
	}
	for k := range want {
		f.commands++
		n := netlink.Neigh{LinkIndex: k.link, Family: unix.AF_INET6, Flags: netlink.NTF_PROXY, IP: net.ParseIP(k.ip)}
		if err := h.NeighAdd(&n); err != nil {
			errs = append(errs, fmt.Errorf("proxy neighbour %s: %w", k.ip, err))
		}
	}
	return errs
}
