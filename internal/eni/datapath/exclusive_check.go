package datapath

// Exclusive ENI mode, checking a pod (exclusive.go: the design): CheckExclusive verifies what AddExclusive made.

import (
	"bytes"
	"fmt"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// CheckExclusive verifies what AddExclusive makes; the error names each piece missing or wrong.
func CheckExclusive(p ExclusivePod) error {
	if p.MTU == 0 {
		p.MTU = DefaultMTU
	}
	if err := p.validate(); err != nil {
		return err
	}
	podNs, err := netns.GetFromPath(p.Netns)
	if err != nil {
		return fmt.Errorf("datapath: check exclusive %s: pod netns %s: %w", p.id(), p.Netns, err)
	}
	defer podNs.Close()
	pod, err := netlink.NewHandleAt(podNs)
	if err != nil {
		return fmt.Errorf("datapath: check exclusive %s: %w", p.id(), err)
	}
	defer pod.Close()
	host, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("datapath: check exclusive %s: %w", p.id(), err)
	}
	defer host.Close()
	var bad []string
	badf := func(f string, a ...any) { bad = append(bad, fmt.Sprintf(f, a...)) }
	hasRoute := func(h *netlink.Handle, l netlink.Link, dst *net.IPNet, gw net.IP) bool {
		rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{LinkIndex: l.Attrs().Index, Table: unix.RT_TABLE_MAIN},
			netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
		if err != nil {
			badf("routes of %s: %v", l.Attrs().Name, err)
			return false
		}
		for _, r := range rs {
			if netString(r.Dst) == netString(dst) && (gw == nil || r.Gw.Equal(gw)) {
				return true
			}
		}
		return false
	}
	eni, err := pod.LinkByName(p.IfName)
	switch {
	case err != nil:
		badf("pod interface %s: %v", p.IfName, err)
	default:
		if !bytes.Equal(eni.Attrs().HardwareAddr, p.MAC) {
			badf("pod interface %s has MAC %s, want the ENI's %s", p.IfName, eni.Attrs().HardwareAddr, p.MAC)
		}
		if a := eni.Attrs(); a.Flags&net.FlagUp == 0 || a.MTU != p.MTU {
			badf("pod interface %s: up %v, MTU %d, want up with MTU %d", p.IfName, a.Flags&net.FlagUp != 0, a.MTU, p.MTU)
		}
		addrs, _ := pod.AddrList(eni, netlink.FAMILY_V4)
		if !slicesContainsFunc(addrs, func(a netlink.Addr) bool { return a.IPNet.String() == host32(p.IP).String() }) {
			badf("pod interface %s lacks %s/32", p.IfName, p.IP)
		}
		if !hasRoute(pod, eni, nil, net.IP(p.Gateway.AsSlice())) {
			badf("pod: no default route via %s dev %s", p.Gateway, p.IfName)
		}
	}
	pv, err := pod.LinkByName(ExclusiveVeth)
	if err != nil {
		badf("pod interface %s: %v", ExclusiveVeth, err)
	} else {
		checkLink(badf, "pod interface "+ExclusiveVeth, pv, p.MTU)
		for _, r := range p.HostRoutes {
			if !hasRoute(pod, pv, prefixNet(r.Masked()), net.IP(gatewayV4.AsSlice())) {
				badf("pod: no route %s via %s dev %s", r.Masked(), GatewayV4, ExclusiveVeth)
			}
		}
	}
	checkExclusiveShaping(badf, p, pod, eni, pv) // exclusive_bandwidth.go
	veth := HostVethName(p.ContainerID, p.IfName)
	hv, err := host.LinkByName(veth)
	if err != nil {
		badf("host veth %s: %v", veth, err)
	} else {
		checkLink(badf, "host veth "+veth, hv, p.MTU)
		if !hasRoute(host, hv, host32(p.IP), nil) {
			badf("host: no route %s/32 dev %s", p.IP, veth)
		}
	}
	checkExclusiveV6(badf, p, pod, host, eni, pv, hv) // exclusive_v6.go
	if len(bad) > 0 {
		return fmt.Errorf("datapath: check exclusive %s: %s", p.id(), strings.Join(bad, "; "))
	}
	return nil
}
