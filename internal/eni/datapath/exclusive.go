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

// moveOut moves the ENI (by mac when given, else every link AddExclusive moved) from the pod back to the host:
// down, addresses flushed, under its host name (under its moving name when that is taken), alias cleared.
func moveOut(pod, host *netlink.Handle, hostNs netns.NsHandle, mac net.HardwareAddr, containerID, ifName string) error {
	var links []netlink.Link
	if mac != nil {
		l, err := linkByMAC(pod, mac)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		links = append(links, l)
	} else {
		var err error
		if links, err = enisIn(pod); err != nil {
			return fmt.Errorf("the pod's links: %w", err)
		}
	}
	var errs []error
	for _, l := range links {
		orig, ok := strings.CutPrefix(l.Attrs().Alias, ExclusiveAlias)
		if !ok || validIfName(orig) != nil {
			errs = append(errs, fmt.Errorf("%s (MAC %s) carries no host name in its alias %q: left in the pod", l.Attrs().Name, l.Attrs().HardwareAddr, l.Attrs().Alias))
			continue
		}
		tmp := movingName(containerID, ifName)
		if err := errors.Join(pod.LinkSetDown(l), flushAddrs(pod, l)); err != nil {
			errs = append(errs, err)
			continue
		}
		if l.Attrs().Name != tmp {
			if err := pod.LinkSetName(l, tmp); err != nil {
				errs = append(errs, fmt.Errorf("rename %s: %w", l.Attrs().Name, err))
				continue
			}
		}
		if err := pod.LinkSetNsFd(l, int(hostNs)); err != nil {
			errs = append(errs, fmt.Errorf("move %s back to the host: %w", orig, err))
			continue
		}
		hl, err := host.LinkByName(tmp)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s on the host: %w", tmp, err))
			continue
		}
		if _, err := host.LinkByName(orig); err == nil {
			errs = append(errs, fmt.Errorf("the ENI %s is back on the host as %s: %s is taken", hl.Attrs().HardwareAddr, tmp, orig))
			continue
		}
		if err := host.LinkSetName(hl, orig); err != nil {
			errs = append(errs, fmt.Errorf("rename %s back to %s: %w", tmp, orig, err))
			continue
		}
		_ = host.LinkSetAlias(hl, "")
	}
	return errors.Join(errs...)
}

// DelExclusive removes p's datapath: see the file comment. Only ContainerID and IfName are needed; Netns (when
// the namespace still exists) to bring the ENI back, MAC (else the ENI is found by its alias), IP (else Del finds
// it from the host veth's route).
func DelExclusive(p ExclusivePod) error {
	base := Pod{ContainerID: p.ContainerID, IfName: p.IfName, IP: p.IP}
	if err := base.withDefaults().validate(false); err != nil {
		return err
	}
	if p.Netns != "" {
		if err := returnENI(p); err != nil {
			return fmt.Errorf("datapath: del exclusive %s: %w", p.id(), err)
		}
	}
	return Del(base)
}

// ReturnENI is DelExclusive's first part alone: the ENI in p's namespace (by p.MAC when set, else by its
// alias) back to the host; nothing when the namespace is gone or holds none.
func ReturnENI(p ExclusivePod) error {
	if p.Netns == "" {
		return nil
	}
	if err := returnENI(p); err != nil {
		return fmt.Errorf("datapath: return the ENI of %s: %w", p.id(), err)
	}
	return nil
}

func returnENI(p ExclusivePod) error {
	podNs, err := netns.GetFromPath(p.Netns)
	if err != nil {
		return nil // gone: its devices went with it (a real NIC back to the host)
	}
	defer podNs.Close()
	pod, err := netlink.NewHandleAt(podNs)
	if err != nil {
		return fmt.Errorf("netlink in pod netns %s: %w", p.Netns, err)
	}
	defer pod.Close()
	host, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer host.Close()
	hostNs, err := netns.Get()
	if err != nil {
		return fmt.Errorf("host netns: %w", err)
	}
	defer hostNs.Close()
	var mac net.HardwareAddr
	if len(p.MAC) == 6 {
		mac = p.MAC
	}
	return errors.Join(unshapeExclusive(pod), moveOut(pod, host, hostNs, mac, p.ContainerID, p.IfName))
}

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
	if len(bad) > 0 {
		return fmt.Errorf("datapath: check exclusive %s: %s", p.id(), strings.Join(bad, "; "))
	}
	return nil
}
