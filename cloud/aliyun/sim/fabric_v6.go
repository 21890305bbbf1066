package sim

// The fabric's IPv6 side (the eni backend's dual stack): an ENI's IPv6 addresses become router host routes (/128)
// to the ENI's veth with permanent neighbour entries at the ENI's MAC, as its IPv4 addresses do, and the
// router-side end of each ENI veth carries its vSwitch's IPv6 gateway (::1 of the block, as /128), so the
// instance resolves the gateway through the ENI as it does on the vSwitch bridge. The router answers neighbour
// solicitations as it answers ARP (proxy NDP entries, proxyWant): on the vSwitch's bridge for the ENI IPv6
// addresses, so a host of the same block reaches them, and on an ENI's veth for the block's other addresses, so
// the instance's replies to such a host, sent on-link through the ENI, find it.

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

// proxyNDPOn turns proxy NDP on in the router namespace, answering at once (proxy_delay 0 on the bridges here and
// on each ENI veth when Sync makes it: the first ping is answered before it times out).
// IPv4's proxy_arp answers for whatever the router routes through another link; IPv6 has no such mode, so Sync
// lists the addresses to answer for (syncProxyNDP).
func (f *Fabric) proxyNDPOn(sws []*VSwitch) error {
	kvs := []string{"net.ipv6.conf.all.proxy_ndp=1"}
	for _, sw := range sws {
		if br := f.bridges[sw.ID]; br != "" && gateway6(sw.IPv6CIDR) != "" {
			kvs = append(kvs, "net.ipv6.neigh."+br+".proxy_delay=0")
		}
	}
	for _, kv := range kvs {
		if out, err := exec.Command("ip", "netns", "exec", f.Router, "sysctl", "-qw", kv).CombinedOutput(); err != nil {
			return fmt.Errorf("sysctl %s in %s: %v: %s", kv, f.Router, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// proxyKey is one proxy neighbour entry: an address answered for on a link of the router.
type proxyKey struct {
	link int
	ip   string
}

// proxyWant is where the router answers neighbour solicitations (pure): on a vSwitch's bridge for every ENI IPv6
// address of that vSwitch (a host of the block reaches the ENI through the router, as the VPC delivers it), and on
// each ENI's veth for every other IPv6 address of its vSwitch, the instances' primaries and the other ENIs'
// addresses (the instance resolves a neighbour of its block on-link through the ENI, and the VPC answers).
// bridge maps a vSwitch to its bridge's index, veth an ENI to its veth's.
func proxyWant(enis []ENI, inst map[string]*Instance, bridge map[string]int, veth map[string]int) map[proxyKey]bool {
	want := map[proxyKey]bool{}
	byVSwitch := map[string][]string{} // vSwitch -> IPv6 addresses of hosts and ENIs in it
	for _, in := range inst {
		if a, err := netip.ParseAddr(in.PrimaryIPv6); err == nil {
			byVSwitch[in.VSwitchID] = append(byVSwitch[in.VSwitchID], a.String())
		}
	}
	own := map[string]string{} // ENI IPv6 address -> its ENI
	for _, e := range enis {
		for _, ip := range e.IPv6 {
			if a, err := netip.ParseAddr(ip); err == nil {
				byVSwitch[e.VSwitchID] = append(byVSwitch[e.VSwitchID], a.String())
				own[a.String()] = e.ID
				if idx, ok := bridge[e.VSwitchID]; ok {
					want[proxyKey{idx, a.String()}] = true
				}
			}
		}
	}
	for _, e := range enis {
		idx, ok := veth[e.ID]
		if !ok || len(e.IPv6) == 0 {
			continue
		}
		for _, a := range byVSwitch[e.VSwitchID] {
			if own[a] != e.ID {
				want[proxyKey{idx, a}] = true
			}
		}
	}
	return want
}

// syncProxyNDP makes the router's proxy neighbour entries on the bridges and the ENI veths exactly proxyWant's
// (mu held): an unassigned address is no longer answered for.
func (f *Fabric) syncProxyNDP(h *netlink.Handle, v fabricView) []error {
	var errs []error
	bridge, veth := map[string]int{}, map[string]int{}
	links := map[int]string{}
	for sw, br := range f.bridges {
		l, err := h.LinkByName(br)
		if err != nil {
			errs = append(errs, fmt.Errorf("bridge %s: %w", br, err))
			continue
		}
		bridge[sw], links[l.Attrs().Index] = l.Attrs().Index, br
	}
	for id, fl := range f.enis {
		if l, err := h.LinkByName(fl.name); err == nil {
			veth[id], links[l.Attrs().Index] = l.Attrs().Index, fl.name
		}
	}
	want := proxyWant(v.enis, v.inst, bridge, veth)
	cur, err := h.NeighProxyList(0, unix.AF_INET6)
	if err != nil {
		return append(errs, fmt.Errorf("proxy neighbours: %w", err))
	}
	for _, n := range cur {
		if n.Flags&netlink.NTF_PROXY == 0 || links[n.LinkIndex] == "" {
			continue
		}
		k := proxyKey{n.LinkIndex, n.IP.String()}
		if want[k] {
			delete(want, k)
			continue
		}
		f.commands++
		n := n
		if err := h.NeighDel(&n); err != nil {
			errs = append(errs, fmt.Errorf("proxy neighbour %s on %s: %w", n.IP, links[n.LinkIndex], err))
		}
	}
	for k := range want {
		f.commands++
		n := netlink.Neigh{LinkIndex: k.link, Family: unix.AF_INET6, Flags: netlink.NTF_PROXY, IP: net.ParseIP(k.ip)}
		if err := h.NeighAdd(&n); err != nil {
			errs = append(errs, fmt.Errorf("proxy neighbour %s on %s: %w", k.ip, links[k.link], err))
		}
	}
	return errs
}
