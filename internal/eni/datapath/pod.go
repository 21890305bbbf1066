package datapath

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/nsutil"
)

// Add's steps, in order. Each names itself in Add's error.
const (
	stepOpen        = "open namespaces"
	stepVeth        = "create veth"
	stepMTU         = "set MTU"
	stepPodIPv6     = "disable IPv6 autoconf in the pod"
	stepPodUp       = "pod interface up"
	stepPodAddr     = "pod address"
	stepPodGwRoute  = "pod route to the gateway"
	stepPodDefault  = "pod default route"
	stepPodNeigh    = "pod gateway neighbour"
	stepHostUp      = "host veth up"
	stepCarrier     = "wait for carrier"
	stepForward     = "ip_forward"
	stepHostRoute   = "host route to the pod"
	stepRuleToPod   = "rule to the pod"
	stepRuleFromPod = "rule from the pod"
)

// stepHook, when set (tests), runs after each of Add's steps; an error fails Add at that step.
var stepHook func(step string) error

// Add builds p's datapath from the current (host) network namespace: see the package comment. Any failure undoes
// all Add did and returns an error naming the step. A host veth of that name already there is an error (a
// leftover of an earlier ADD: DEL it first); Add never removes what it did not create.
func Add(p Pod) (Result, error) {
	p = p.withDefaults()
	if err := p.validate(true); err != nil {
		return Result{}, err
	}
	a := &adder{p: p, veth: HostVethName(p.ContainerID, p.IfName), podNs: netns.None()}
	defer a.close()
	steps := []struct {
		name string
		do   func() error
	}{
		{stepOpen, a.open},
		{stepVeth, a.createVeth},
		{stepMTU, a.setMTU},
		{stepPodIPv6, a.podIPv6},
		{stepPodUp, func() error { return a.pod.LinkSetUp(a.podLink) }},
		{stepPodAddr, func() error { return a.pod.AddrAdd(a.podLink, &netlink.Addr{IPNet: host32(p.IP)}) }},
		{stepPodGwRoute, func() error {
			return a.pod.RouteAdd(&netlink.Route{LinkIndex: a.podLink.Attrs().Index, Dst: host32(gatewayV4),
				Scope: netlink.SCOPE_LINK, Protocol: RouteProtocol})
		}},
		{stepPodDefault, func() error {
			return a.pod.RouteAdd(&netlink.Route{LinkIndex: a.podLink.Attrs().Index, Gw: net.IP(gatewayV4.AsSlice()),
				Flags: int(netlink.FLAG_ONLINK), Protocol: RouteProtocol})
		}},
		{stepPodNeigh, func() error {
			return a.pod.NeighAdd(&netlink.Neigh{LinkIndex: a.podLink.Attrs().Index, Family: netlink.FAMILY_V4,
				State: netlink.NUD_PERMANENT, IP: net.IP(gatewayV4.AsSlice()), HardwareAddr: a.hostLink.Attrs().HardwareAddr})
		}},
		{stepHostUp, func() error { return a.host.LinkSetUp(a.hostLink) }},
		{stepCarrier, a.waitCarrier},
		{stepBandwidth, a.shape},
		{stepForward, func() error { return ensureSysctl(sysctlPath("ipv4", "ip_forward"), "1") }},
		{stepHostRoute, a.hostRoute},
		{stepRuleToPod, func() error {
			return a.ensureRule(podRule{Priority: p.Rules.ToPod, To: true, IP: p.IP, Table: unix.RT_TABLE_MAIN})
		}},
		{stepRuleFromPod, func() error { return a.ensureRule(podRule{Priority: p.Rules.FromPod, IP: p.IP, Table: p.Table}) }},
	}
	steps = append(steps, a.ipv6Steps()...) // ipv6.go
	for _, s := range steps {
		err := s.do()
		if err == nil && stepHook != nil {
			err = stepHook(s.name)
		}
		if err != nil {
			return Result{}, a.fail(s.name, err)
		}
	}
	return Result{HostVeth: a.veth, HostMAC: a.hostLink.Attrs().HardwareAddr, PodMAC: a.podLink.Attrs().HardwareAddr}, nil
}

type adder struct {
	p                 Pod
	veth              string
	host, pod         *netlink.Handle
	podNs             netns.NsHandle
	hostLink, podLink netlink.Link
	undo              []func() error // in the order done; run in reverse
}

func (a *adder) close() {
	if a.pod != nil {
		a.pod.Close()
	}
	if a.host != nil {
		a.host.Close()
	}
	if a.podNs.IsOpen() {
		a.podNs.Close()
	}
}

func (a *adder) fail(step string, err error) error {
	err = fmt.Errorf("datapath: add %s: %s: %w", a.p.id(), step, err)
	var left []error
	for i := len(a.undo) - 1; i >= 0; i-- {
		if uerr := a.undo[i](); uerr != nil {
			left = append(left, uerr)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("%w; undoing it failed too: %w", err, errors.Join(left...))
	}
	return err
}

// undoIf records undo when this Add made what undo removes (did).
func (a *adder) undoIf(did bool, undo func() error) {
	if did {
		a.undo = append(a.undo, undo)
	}
}

func (a *adder) open() error {
	var err error
	if a.host, err = netlink.NewHandle(); err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	if a.podNs, err = netns.GetFromPath(a.p.Netns); err != nil {
		return fmt.Errorf("pod netns %s: %w", a.p.Netns, err)
	}
	if a.pod, err = netlink.NewHandleAt(a.podNs); err != nil {
		return fmt.Errorf("netlink in pod netns %s: %w", a.p.Netns, err)
	}
	if _, err := a.host.LinkByName(a.veth); err == nil {
		return fmt.Errorf("host veth %s %w (left by an earlier ADD of this container: DEL it first)", a.veth, ErrExists)
	} else if !notFound(err) {
		return fmt.Errorf("host veth %s: %w", a.veth, err)
	}
	if _, err := a.pod.LinkByName(a.p.IfName); err == nil {
		return fmt.Errorf("pod netns %s already has an interface %s (%w)", a.p.Netns, a.p.IfName, ErrExists)
	} else if !notFound(err) {
		return fmt.Errorf("pod interface %s: %w", a.p.IfName, err)
	}
	return nil
}

// createVeth creates both ends at once, the pod end directly inside the pod's namespace.
func (a *adder) createVeth() error {
	la := netlink.NewLinkAttrs()
	la.Name, la.MTU = a.veth, a.p.MTU
	v := &netlink.Veth{LinkAttrs: la, PeerName: a.p.IfName, PeerMTU: uint32(a.p.MTU),
		PeerNamespace: netlink.NsFd(int(a.podNs))}
	if err := a.host.LinkAdd(v); err != nil {
		return fmt.Errorf("%s <-> %s in %s: %w", a.veth, a.p.IfName, a.p.Netns, err)
	}
	a.undo = append(a.undo, func() error { return delLink(a.host, a.veth) })
	var err error
	if a.hostLink, err = a.host.LinkByName(a.veth); err != nil {
		return fmt.Errorf("host veth %s after creating it: %w", a.veth, err)
	}
	if a.podLink, err = a.pod.LinkByName(a.p.IfName); err != nil {
		return fmt.Errorf("pod interface %s after creating it: %w", a.p.IfName, err)
	}
	return nil
}

func (a *adder) setMTU() error {
	for _, l := range []struct {
		h    *netlink.Handle
		link netlink.Link
	}{{a.host, a.hostLink}, {a.pod, a.podLink}} {
		if l.link.Attrs().MTU != a.p.MTU {
			if err := l.h.LinkSetMTU(l.link, a.p.MTU); err != nil {
				return fmt.Errorf("%s: %w", l.link.Attrs().Name, err)
			}
		}
	}
	return nil
}

// podIPv6 turns router advertisements and address autoconfiguration off on the pod end (before it is up), where
// the kernel has IPv6 at all.
func (a *adder) podIPv6() error {
	return nsutil.Do(a.podNs, func() error {
		if _, err := os.Stat(sysctlPath("ipv6", "conf")); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		for _, k := range []string{"accept_ra", "autoconf"} {
			if err := ensureSysctl(sysctlPath("ipv6", "conf", a.p.IfName, k), "0"); err != nil {
				return err
			}
		}
		return nil
	})
}

// carrierWait bounds waitCarrier.
const carrierWait = 10 * time.Second

// waitCarrier returns once both ends can transmit. With both ends up the veth has carrier at once, but the
// kernel activates a device's queueing discipline asynchronously (linkwatch); until then it is noop and every
// packet sent is dropped, so a pod's first packets (its first DNS query) would be lost.
func (a *adder) waitCarrier() error {
	deadline := time.Now().Add(carrierWait)
	for {
		hostOK, herr := ready(a.host, a.hostLink.Attrs().Index)
		podOK, perr := ready(a.pod, a.podLink.Attrs().Index)
		if err := errors.Join(herr, perr); err != nil {
			return err
		}
		if hostOK && podOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (ready %v) and %s (ready %v) not both transmitting after %s", a.veth, hostOK,
				a.p.IfName, podOK, carrierWait)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// ready: the link is operationally up and its root qdisc is no longer the placeholder noop.
func ready(h *netlink.Handle, index int) (bool, error) {
	l, err := h.LinkByIndex(index)
	if err != nil {
		return false, err
	}
	if l.Attrs().OperState != netlink.OperUp {
		return false, nil
	}
	qs, err := h.QdiscList(l)
	if err != nil {
		return false, fmt.Errorf("qdiscs of %s: %w", l.Attrs().Name, err)
	}
	for _, q := range qs {
		if q.Attrs().Parent == netlink.HANDLE_ROOT && q.Type() == "noop" {
			return false, nil
		}
	}
	return true, nil
}

func (a *adder) hostRoute() error {
	r := &netlink.Route{LinkIndex: a.hostLink.Attrs().Index, Dst: host32(a.p.IP), Scope: netlink.SCOPE_LINK,
		Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
	if err := a.host.RouteAdd(r); err != nil {
		return fmt.Errorf("%s/32 dev %s: %w", a.p.IP, a.veth, err)
	}
	a.undo = append(a.undo, func() error {
		if err := a.host.RouteDel(r); err != nil && !notFound(err) {
			return fmt.Errorf("host route %s/32: %w", a.p.IP, err)
		}
		return nil
	})
	return nil
}

// ensureRule adds want unless it is there. A rule at the same priority with the same selector but another table
// (a leftover of an earlier holder of the address) is replaced; undoing restores it.
func (a *adder) ensureRule(want podRule) error {
	rules, err := a.host.RuleListFiltered(netlink.FAMILY_V4, &netlink.Rule{Priority: want.Priority}, netlink.RT_FILTER_PRIORITY)
	if err != nil {
		return fmt.Errorf("list rules: %w", err)
	}
	present := false
	var stale []netlink.Rule
	for _, r := range rules {
		k, ok := podRuleOf(r)
		if !ok || k.Priority != want.Priority || k.To != want.To || k.IP != want.IP {
			continue
		}
		if k == want {
			present = true
		} else {
			stale = append(stale, r)
		}
	}
	if !present {
		added, err := addRuleOnce(a.host, want)
		if err != nil {
			return fmt.Errorf("%s: %w", want, err)
		}
		a.undoIf(added, func() error {
			if err := a.host.RuleDel(want.rule()); err != nil && !notFound(err) {
				return fmt.Errorf("%s: %w", want, err)
			}
			return nil
		})
	}
	for _, r := range stale {
		if err := a.host.RuleDel(&r); err != nil && !notFound(err) {
			return fmt.Errorf("replace stale %s: %w", r, err)
		}
		a.undo = append(a.undo, func() error {
			if err := a.host.RuleAdd(&r); err != nil {
				return fmt.Errorf("restore %s: %w", r, err)
			}
			return nil
		})
	}
	return nil
}

func delLink(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := h.LinkDel(l); err != nil && !notFound(err) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// Del removes p's datapath from the current (host) network namespace: the host veth (which takes the pod end,
// and with it the pod's addresses, routes and neighbour, and the host route to the pod with it) and both rules.
// It never enters the pod's namespace, so a namespace already gone is fine. It is idempotent: what is already
// gone is success.
//
// The address whose rules go is p.IP and every /32 the veth's host routes lead to, so an unknown p.IP (invalid)
// is found from the veth. With neither (p.IP unknown and the veth gone) the rules cannot be tied to this pod and
// stay: weftd's SyncRules removes the rules of addresses no pod holds. Only rules at p.Rules' priorities are
// touched; Pod.Netns, Table and MTU are not needed.
func Del(p Pod) error {
	p = p.withDefaults()
	if err := p.validate(false); err != nil {
		return err
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("datapath: del %s: netlink: %w", p.id(), err)
	}
	defer h.Close()
	veth := HostVethName(p.ContainerID, p.IfName)
	ips, ips6 := map[netip.Addr]bool{}, map[netip.Addr]bool{}
	if p.IP.IsValid() {
		ips[p.IP] = true
	}
	if p.IPv6.IsValid() {
		ips6[p.IPv6] = true
	}
	var errs []error
	link, err := h.LinkByName(veth)
	switch {
	case err == nil:
		if link.Type() != "veth" {
			return fmt.Errorf("datapath: del %s: %s is a %s, not a veth: not weft's, left alone", p.id(), veth, link.Type())
		}
		routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{LinkIndex: link.Attrs().Index,
			Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
		if err != nil {
			errs = append(errs, fmt.Errorf("routes of %s: %w", veth, err))
		}
		for _, r := range routes {
			if a, ok := addr32(r.Dst); ok {
				ips[a] = true
			}
		}
		if err := routes6(h, link, ips6); err != nil { // ipv6.go
			errs = append(errs, err)
		}
		if err := h.LinkDel(link); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("delete host veth %s: %w", veth, err))
		}
	case !notFound(err):
		errs = append(errs, fmt.Errorf("host veth %s: %w", veth, err))
	}
	errs = append(errs, delRules(h, netlink.FAMILY_V4, p.Rules, ips)...)
	errs = append(errs, delRules(h, netlink.FAMILY_V6, p.Rules, ips6)...)
	if len(errs) > 0 {
		return fmt.Errorf("datapath: del %s: %w", p.id(), errors.Join(errs...))
	}
	return nil
}

// checkRules reports what is wrong with ip's two rules (to ip lookup main at ToPod, from ip lookup table at
// FromPod) among rules, the host's rules of ip's family.
func checkRules(badf func(string, ...any), rules []netlink.Rule, pr Rules, ip netip.Addr, table int) {
	for _, want := range []podRule{
		{Priority: pr.ToPod, To: true, IP: ip, Table: unix.RT_TABLE_MAIN},
		{Priority: pr.FromPod, IP: ip, Table: table},
	} {
		found, others := false, []string(nil)
		for _, r := range rules {
			k, ok := podRuleOf(r)
			if ok && k == want {
				found = true
			} else if ok && k.Priority == want.Priority && k.To == want.To && k.IP == want.IP {
				others = append(others, k.String())
			}
		}
		switch {
		case !found && others != nil:
			badf("%s: missing; wrong instead: %v", want, others)
		case !found:
			badf("%s: missing", want)
		case others != nil:
			badf("%s: also %v", want, others)
		}
	}
}

func (r Rules) forDirection(to bool) int {
	if to {
		return r.ToPod
	}
	return r.FromPod
}

// Check verifies every piece Add makes, in the host namespace (the current one) and in the pod's. The error
// names each piece missing or wrong.
func Check(p Pod) error {
	p = p.withDefaults()
	if err := p.validate(true); err != nil {
		return err
	}
	var bad []error
	badf := func(format string, args ...any) { bad = append(bad, fmt.Errorf(format, args...)) }
	done := func() error {
		if len(bad) > 0 {
			return fmt.Errorf("datapath: check %s: %w", p.id(), errors.Join(bad...))
		}
		return nil
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("datapath: check %s: netlink: %w", p.id(), err)
	}
	defer h.Close()
	veth := HostVethName(p.ContainerID, p.IfName)

	hostLink, err := h.LinkByName(veth)
	if err != nil {
		badf("host veth %s: missing (%v)", veth, err)
		hostLink = nil
	} else {
		checkLink(badf, "host veth", hostLink, p.MTU)
		routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: host32(p.IP), Table: unix.RT_TABLE_MAIN},
			netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
		found := false
		for _, r := range routes {
			found = found || r.LinkIndex == hostLink.Attrs().Index && r.Gw == nil && r.Scope == netlink.SCOPE_LINK
		}
		if err != nil || !found {
			badf("host route %s/32 dev %s scope link: missing (found %v, err %v)", p.IP, veth, routes, err)
		}
	}

	rules, err := h.RuleList(netlink.FAMILY_V4)
	if err != nil {
		badf("list rules: %v", err)
	}
	checkRules(badf, rules, p.Rules, p.IP, p.Table)
	if v, err := readSysctl(sysctlPath("ipv4", "ip_forward")); err != nil || v != "1" {
		badf("net.ipv4.ip_forward: %q (err %v), want 1", v, err)
	}
	checkIPv6Host(badf, p, h, hostLink) // check_v6.go

	ns, err := netns.GetFromPath(p.Netns)
	if err != nil {
		badf("pod netns %s: %v", p.Netns, err)
		return done()
	}
	defer ns.Close()
	ph, err := netlink.NewHandleAt(ns)
	if err != nil {
		badf("netlink in pod netns %s: %v", p.Netns, err)
		return done()
	}
	defer ph.Close()
	podLink, err := ph.LinkByName(p.IfName)
	if err != nil {
		badf("pod interface %s: missing (%v)", p.IfName, err)
		return done()
	}
	checkLink(badf, "pod interface", podLink, p.MTU)
	idx := podLink.Attrs().Index
	if hostLink != nil && (podLink.Attrs().ParentIndex != hostLink.Attrs().Index || hostLink.Attrs().ParentIndex != idx) {
		badf("pod interface %s: not the peer of host veth %s", p.IfName, veth)
	}

	addrs, err := ph.AddrList(podLink, netlink.FAMILY_V4)
	found := false
	for _, a := range addrs {
		ip, ok := addr32(a.IPNet)
		found = found || ok && ip == p.IP
	}
	if err != nil || !found {
		badf("pod address %s/32 on %s: missing (found %v, err %v)", p.IP, p.IfName, addrs, err)
	}

	routes, err := ph.RouteList(podLink, netlink.FAMILY_V4)
	if err != nil {
		badf("pod routes: %v", err)
	}
	gwRoute, defRoute := false, false
	for _, r := range routes {
		if r.Table != unix.RT_TABLE_MAIN {
			continue
		}
		if a, ok := addr32(r.Dst); ok && a == gatewayV4 && r.Gw == nil && r.Scope == netlink.SCOPE_LINK {
			gwRoute = true
		}
		if isDefault(r.Dst) && r.Gw.Equal(net.IP(gatewayV4.AsSlice())) && r.Flags&int(netlink.FLAG_ONLINK) != 0 {
			defRoute = true
		}
	}
	if !gwRoute {
		badf("pod route %s/32 dev %s scope link: missing", GatewayV4, p.IfName)
	}
	if !defRoute {
		badf("pod default route via %s dev %s onlink: missing", GatewayV4, p.IfName)
	}

	neighs, err := ph.NeighList(idx, netlink.FAMILY_V4)
	found = false
	for _, n := range neighs {
		found = found || n.IP.Equal(net.IP(gatewayV4.AsSlice())) && n.State&netlink.NUD_PERMANENT != 0 &&
			hostLink != nil && bytes.Equal(n.HardwareAddr, hostLink.Attrs().HardwareAddr)
	}
	if err != nil || !found {
		badf("pod neighbour %s lladdr <host veth MAC> permanent on %s: missing (found %v, err %v)", GatewayV4, p.IfName, neighs, err)
	}
	checkShaping(badf, p, h, hostLink, ph, podLink)
	checkIPv6Pod(badf, p, h, ph, podLink, hostLink) // check_v6.go
	return done()
}

func checkLink(badf func(string, ...any), what string, l netlink.Link, mtu int) {
	a := l.Attrs()
	if l.Type() != "veth" {
		badf("%s %s: a %s, want a veth", what, a.Name, l.Type())
	}
	if a.Flags&net.FlagUp == 0 {
		badf("%s %s: down", what, a.Name)
	}
	if a.MTU != mtu {
		badf("%s %s: MTU %d, want %d", what, a.Name, a.MTU, mtu)
	}
}

func isDefault(n *net.IPNet) bool {
	if n == nil {
		return true
	}
	ones, _ := n.Mask.Size()
	return ones == 0 && n.IP.IsUnspecified()
}
