package datapath

// Exclusive ENI mode (Terway's ENIOnly): the pod gets a whole ENI.
//
// AddExclusive finds the ENI by MAC in the current (host) namespace, brings it down, notes its host name in its
// alias (ExclusiveAlias + name: the alias moves with the link), moves it into the pod's namespace and renames it
// IfName; there: its primary address as /32, a scope-link route to the vSwitch gateway and the default route via
// the gateway on-link, the MTU. A second veth pair carries what must not leave through the ENI: its pod end
// ExclusiveVeth ("veth1"), its host end HostVethName(containerID, ifName) (so the host side reads as a shared
// pod's veth: the same Observe, Prune and Del); in the pod a scope-link route to GatewayV4, a permanent neighbour
// GatewayV4 -> the host end's MAC, and a route per HostRoutes prefix (the node's address, the Service CIDR, the
// configured host CIDRs) via GatewayV4 on that veth with the pod's address as source; on the host the /32 route
// to the pod via the host end, so the node reaches the pod (and Service replies come back) through it.
//
// DelExclusive moves the ENI back: found in the pod's namespace by its alias, down, addresses flushed, renamed
// to its host name and moved to the host, its alias cleared; then Del removes the host veth and its rules. A pod
// namespace already gone is fine: a real NIC returns to the host by itself when its namespace is destroyed
// (alisim's fabric makes its ENI again likewise). Both are idempotent; a failed AddExclusive undoes its steps.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/bandwidth"
)

// ExclusiveVeth is the pod end of an exclusive pod's second veth.
const ExclusiveVeth = "veth1"

// ExclusiveAlias prefixes the alias of an ENI inside a pod; the rest is its name on the host.
const ExclusiveAlias = "weft-eni-host:"

// FindENIWait bounds AddExclusive's look for the ENI on the host (it may be on its way back from a DEL).
var FindENIWait = 10 * time.Second

// ExclusivePod is one pod on an exclusive ENI.
type ExclusivePod struct {
	ContainerID, Netns, IfName string
	MAC                        net.HardwareAddr // the ENI's
	IP                         netip.Addr       // the ENI's primary address
	Gateway                    netip.Addr       // the vSwitch gateway
	MTU                        int              // 0: DefaultMTU
	HostRoutes                 []netip.Prefix   // through the second veth: the node, Services, host CIDRs
	Bandwidth                  bandwidth.Limits // the pod's limits (exclusive_bandwidth.go)
	// Dual stack (exclusive_v6.go): the ENI's IPv6 address, the vSwitch IPv6 block's prefix length, its IPv6
	// gateway, and the IPv6 prefixes through the second veth; all zero when IPv4 only.
	IPv6        netip.Addr
	IPv6Bits    int
	IPv6Gateway netip.Addr
	HostRoutes6 []netip.Prefix
}

// ExclusiveResult is what AddExclusive made.
type ExclusiveResult struct {
	HostVeth                    string
	HostMAC, PodMAC, PodVethMAC net.HardwareAddr // PodMAC: the ENI's
}

func (p ExclusivePod) id() string { return p.ContainerID + "/" + p.IfName }

func (p ExclusivePod) validate() error {
	base := Pod{ContainerID: p.ContainerID, Netns: p.Netns, IfName: p.IfName, IP: p.IP, Table: 1, MTU: p.MTU}.withDefaults()
	var errs []error
	if err := base.validate(true); err != nil {
		errs = append(errs, err)
	}
	if p.IfName == ExclusiveVeth {
		errs = append(errs, fmt.Errorf("IfName %q: taken by the second veth", p.IfName))
	}
	if len(p.MAC) != 6 {
		errs = append(errs, fmt.Errorf("MAC %q: want the ENI's 6-byte MAC", p.MAC))
	}
	if !p.Gateway.Is4() || p.Gateway == p.IP || p.Gateway.IsUnspecified() {
		errs = append(errs, fmt.Errorf("Gateway %v: want the vSwitch gateway's IPv4 address", p.Gateway))
	}
	if err := p.validateBandwidth(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, p.validateV6()...) // exclusive_v6.go
	for i, r := range p.HostRoutes {
		if !r.IsValid() || !r.Addr().Is4() || r.Bits() == 0 {
			errs = append(errs, fmt.Errorf("HostRoutes[%d] %v: want an IPv4 prefix other than the default", i, r))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("datapath: exclusive pod %s: %w", p.id(), errors.Join(errs...))
	}
	return nil
}

// movingName is the ENI's name while it moves between namespaces: unique to the pod interface, so it clashes
// with nothing on either side.
func movingName(containerID, ifName string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + ifName))
	return "wex" + hex.EncodeToString(sum[:])[:vethHexLen]
}

func linkByMAC(h *netlink.Handle, mac net.HardwareAddr) (netlink.Link, error) {
	links, err := h.LinkList()
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		if bytes.Equal(l.Attrs().HardwareAddr, mac) && !isHostVethName(l.Attrs().Name) {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no link with MAC %s: %w", mac, ErrNotFound)
}

// enisIn are the links of a namespace that are ENIs moved there by AddExclusive.
func enisIn(h *netlink.Handle) ([]netlink.Link, error) {
	links, err := h.LinkList()
	if err != nil {
		return nil, err
	}
	var out []netlink.Link
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Alias, ExclusiveAlias) {
			out = append(out, l)
		}
	}
	return out, nil
}

// AddExclusive builds p's datapath from the current (host) namespace: see the file comment.
func AddExclusive(p ExclusivePod) (ExclusiveResult, error) {
	if p.MTU == 0 {
		p.MTU = DefaultMTU
	}
	if err := p.validate(); err != nil {
		return ExclusiveResult{}, err
	}
	a := &adder{p: Pod{ContainerID: p.ContainerID, Netns: p.Netns, IfName: ExclusiveVeth, IP: p.IP, MTU: p.MTU},
		veth: HostVethName(p.ContainerID, p.IfName), podNs: netns.None()}
	defer a.close()
	x := &exclusive{a: a, p: p, hostNs: netns.None()}
	defer func() {
		if x.hostNs.IsOpen() {
			x.hostNs.Close()
		}
	}()
	gw := net.IP(p.Gateway.AsSlice())
	steps := []struct {
		name string
		do   func() error
	}{
		{stepOpen, x.open},
		{"move the ENI into the pod", x.moveIn},
		{"ENI MTU", func() error { return a.pod.LinkSetMTU(x.eni, p.MTU) }},
		{"ENI up", func() error { return a.pod.LinkSetUp(x.eni) }},
		{"ENI address", func() error { return a.pod.AddrAdd(x.eni, &netlink.Addr{IPNet: host32(p.IP)}) }},
		{"route to the vSwitch gateway", func() error {
			return a.pod.RouteAdd(&netlink.Route{LinkIndex: x.eni.Attrs().Index, Dst: host32(p.Gateway), Scope: netlink.SCOPE_LINK,
				Src: net.IP(p.IP.AsSlice()), Protocol: RouteProtocol})
		}},
		{"default route via the vSwitch gateway", func() error {
			return a.pod.RouteAdd(&netlink.Route{LinkIndex: x.eni.Attrs().Index, Gw: gw, Flags: int(netlink.FLAG_ONLINK),
				Src: net.IP(p.IP.AsSlice()), Protocol: RouteProtocol})
		}},
		{stepVeth, a.createVeth},
		{stepMTU, a.setMTU},
		{stepPodIPv6, a.podIPv6},
		{stepPodUp, func() error { return a.pod.LinkSetUp(a.podLink) }},
		{stepPodGwRoute, func() error {
			return a.pod.RouteAdd(&netlink.Route{LinkIndex: a.podLink.Attrs().Index, Dst: host32(gatewayV4),
				Scope: netlink.SCOPE_LINK, Protocol: RouteProtocol})
		}},
		{stepPodNeigh, func() error {
			return a.pod.NeighAdd(&netlink.Neigh{LinkIndex: a.podLink.Attrs().Index, Family: netlink.FAMILY_V4,
				State: netlink.NUD_PERMANENT, IP: net.IP(gatewayV4.AsSlice()), HardwareAddr: a.hostLink.Attrs().HardwareAddr})
		}},
		{"pod routes to the host", func() error {
			for _, r := range p.HostRoutes {
				rt := &netlink.Route{LinkIndex: a.podLink.Attrs().Index, Dst: prefixNet(r.Masked()), Gw: net.IP(gatewayV4.AsSlice()),
					Flags: int(netlink.FLAG_ONLINK), Src: net.IP(p.IP.AsSlice()), Protocol: RouteProtocol}
				if err := a.pod.RouteAdd(rt); err != nil && !errors.Is(err, unix.EEXIST) {
					return fmt.Errorf("%s via %s dev %s: %w", r, GatewayV4, ExclusiveVeth, err)
				}
			}
			return nil
		}},
		{stepHostUp, func() error { return a.host.LinkSetUp(a.hostLink) }},
		{stepCarrier, a.waitCarrier},
		{stepForward, func() error { return ensureSysctl(sysctlPath("ipv4", "ip_forward"), "1") }},
		{stepHostRoute, a.hostRoute},
		{stepBandwidth, x.shape}, // exclusive_bandwidth.go
	}
	steps = insertSteps(steps, "default route via the vSwitch gateway", x.eniV6Steps()) // exclusive_v6.go
	steps = insertSteps(steps, stepCarrier, x.vethV6Steps())
	for _, s := range steps {
		err := s.do()
		if err == nil && stepHook != nil {
			err = stepHook(s.name)
		}
		if err != nil {
			err = a.fail(s.name, err)
			return ExclusiveResult{}, fmt.Errorf("exclusive: %w", err)
		}
	}
	return ExclusiveResult{HostVeth: a.veth, HostMAC: a.hostLink.Attrs().HardwareAddr, PodMAC: p.MAC,
		PodVethMAC: a.podLink.Attrs().HardwareAddr}, nil
}

type exclusive struct {
	a      *adder
	p      ExclusivePod
	hostNs netns.NsHandle
	eni    netlink.Link // in the pod
}

func (x *exclusive) open() error {
	a := x.a
	if err := a.open(); err != nil {
		return err
	}
	var err error
	if x.hostNs, err = netns.Get(); err != nil {
		return fmt.Errorf("host netns: %w", err)
	}
	if _, err := a.pod.LinkByName(x.p.IfName); err == nil {
		return fmt.Errorf("pod netns %s already has an interface %s (%w)", x.p.Netns, x.p.IfName, ErrExists)
	} else if !notFound(err) {
		return fmt.Errorf("pod interface %s: %w", x.p.IfName, err)
	}
	return nil
}

// moveIn moves the ENI from the host into the pod as IfName; undoing moves it back.
func (x *exclusive) moveIn() error {
	a, p := x.a, x.p
	deadline := time.Now().Add(FindENIWait)
	var link netlink.Link
	var err error
	for {
		if link, err = linkByMAC(a.host, p.MAC); err == nil || !errors.Is(err, ErrNotFound) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("the ENI on the host: %w", err)
	}
	orig, tmp := link.Attrs().Name, movingName(p.ContainerID, p.IfName)
	if err := a.host.LinkSetDown(link); err != nil {
		return fmt.Errorf("%s down: %w", orig, err)
	}
	if err := a.host.LinkSetAlias(link, ExclusiveAlias+orig); err != nil {
		return fmt.Errorf("%s alias: %w", orig, err)
	}
	if err := a.host.LinkSetName(link, tmp); err != nil {
		_ = a.host.LinkSetAlias(link, "")
		return fmt.Errorf("rename %s: %w", orig, err)
	}
	if err := a.host.LinkSetNsFd(link, int(a.podNs)); err != nil {
		_ = a.host.LinkSetName(link, orig)
		_ = a.host.LinkSetAlias(link, "")
		return fmt.Errorf("move %s into %s: %w", orig, p.Netns, err)
	}
	a.undo = append(a.undo, func() error { return moveOut(a.pod, a.host, x.hostNs, p.MAC, p.ContainerID, p.IfName) })
	if x.eni, err = linkByMAC(a.pod, p.MAC); err != nil {
		return fmt.Errorf("the ENI in the pod: %w", err)
	}
	if err := a.pod.LinkSetName(x.eni, p.IfName); err != nil {
		return fmt.Errorf("rename the ENI %s: %w", p.IfName, err)
	}
	if x.eni, err = a.pod.LinkByName(p.IfName); err != nil {
		return err
	}
	return flushAddrs(a.pod, x.eni)
}

func flushAddrs(h *netlink.Handle, l netlink.Link) error {
	addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("addresses of %s: %w", l.Attrs().Name, err)
	}
	for _, ad := range addrs {
		if ad.IP.IsLinkLocalUnicast() {
			continue
		}
		if err := h.AddrDel(l, &ad); err != nil && !notFound(err) {
			return fmt.Errorf("remove %s from %s: %w", ad.IPNet, l.Attrs().Name, err)
		}
	}
	return nil
}
