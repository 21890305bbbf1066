package datapath

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ENILink is one ENI as weftd sets it up on the host.
type ENILink struct {
	MAC     net.HardwareAddr
	Gateway netip.Addr   // the vSwitch gateway
	CIDR    netip.Prefix // the vSwitch block
	Table   int
	MTU     int // 0: leave
}

// Host is the node's side, weftd's. H nil: the current network namespace (of the calling thread). A non-nil H
// must be a handle of the calling thread's namespace too where sysctls are set (EnsureENI's rp_filter): /proc/sys
// cannot reach another namespace, and EnsureENI refuses rather than set the wrong one.
type Host struct {
	H     *netlink.Handle
	Rules Rules // zero: DefaultRules
}

// HostPod is a pod datapath found on the host: a veth named like HostVethName and a /32 route of the main table
// through it. A veth with no such route (an Add under way, or a remnant) is listed once with an invalid IP.
type HostPod struct {
	Veth string
	IP   netip.Addr
}

// PodRule is an address's rule. Observed lists a "from IP lookup Table" rule at Rules.FromPod as {IP, Table} and
// a "to IP lookup main" rule at Rules.ToPod as {IP, 254}; SyncRules takes the wanted pairs (one per pod address,
// Table its ENI's) and derives both rules from each.
type PodRule struct {
	IP    netip.Addr
	Table int
}

// Observed is the pods' datapath state on the host.
type Observed struct {
	Pods  []HostPod // sorted by Veth, then IP
	Rules []PodRule // pod-shaped rules at the two priorities, sorted by IP, then Table
}

// TableFor is the route table of the ENI with ifindex: base + ifindex (Terway: 1000 + ifindex).
func TableFor(base, ifindex int) int { return base + ifindex }

func (h Host) handle() (*netlink.Handle, func(), error) {
	if h.H != nil {
		return h.H, func() {}, nil
	}
	nh, err := netlink.NewHandle()
	if err != nil {
		return nil, nil, fmt.Errorf("netlink: %w", err)
	}
	return nh, nh.Close, nil
}

// LinkByMAC is the link with hardware address mac. Several links sharing it (a VLAN or bond on the ENI): the one
// physical device among them. None: an error wrapping ErrNotFound.
func (h Host) LinkByMAC(mac net.HardwareAddr) (netlink.Link, error) {
	if len(mac) != 6 || bytes.Equal(mac, make([]byte, 6)) {
		return nil, fmt.Errorf("datapath: ENI MAC %q: want a 6-byte Ethernet address", mac)
	}
	nh, done, err := h.handle()
	if err != nil {
		return nil, fmt.Errorf("datapath: link with MAC %s: %w", mac, err)
	}
	defer done()
	links, err := nh.LinkList()
	if err != nil {
		return nil, fmt.Errorf("datapath: link with MAC %s: list links: %w", mac, err)
	}
	var found, devices []netlink.Link
	for _, l := range links {
		if bytes.Equal(l.Attrs().HardwareAddr, mac) {
			found = append(found, l)
			if l.Type() == "device" {
				devices = append(devices, l)
			}
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) == 0:
		return nil, fmt.Errorf("datapath: link with MAC %s: %w", mac, ErrNotFound)
	case len(devices) == 1:
		return devices[0], nil
	}
	var names []string
	for _, l := range found {
		names = append(names, l.Attrs().Name+" ("+l.Type()+")")
	}
	return nil, fmt.Errorf("datapath: link with MAC %s: ambiguous, %s carry it", mac, strings.Join(names, ", "))
}

func (e ENILink) validate() error {
	var errs []error
	if len(e.MAC) != 6 || bytes.Equal(e.MAC, make([]byte, 6)) {
		errs = append(errs, fmt.Errorf("MAC %q: want a 6-byte Ethernet address", e.MAC))
	}
	if !e.CIDR.IsValid() || !e.CIDR.Addr().Is4() || e.CIDR.Bits() == 0 || e.CIDR != e.CIDR.Masked() {
		errs = append(errs, fmt.Errorf("CIDR %v: want the vSwitch's IPv4 block (a masked prefix, not /0)", e.CIDR))
	}
	if !e.Gateway.IsValid() || !e.Gateway.Is4() {
		errs = append(errs, fmt.Errorf("Gateway %v: want an IPv4 address", e.Gateway))
	} else if e.CIDR.IsValid() && !e.CIDR.Contains(e.Gateway) {
		errs = append(errs, fmt.Errorf("Gateway %v: outside CIDR %v, want the vSwitch's gateway", e.Gateway, e.CIDR))
	}
	if err := validTable(e.Table); err != nil {
		errs = append(errs, fmt.Errorf("Table %d: %w", e.Table, err))
	}
	if e.MTU != 0 {
		if err := validMTU(e.MTU); err != nil {
			errs = append(errs, fmt.Errorf("MTU %d: %w", e.MTU, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("datapath: ENI %s: %w", e.MAC, errors.Join(errs...))
	}
	return nil
}

// EnsureENI sets the ENI with e.MAC up for pods: MTU (when set), rp_filter 0, up, and its table e.Table holding
// "default via Gateway dev <link> onlink" and "CIDR dev <link> scope link". Idempotent: it changes only what
// differs, so it also repairs drift (a route deleted or changed, the link set down, which takes its routes).
// weft's routes in that table that are not those two are removed; others' routes there are left. It returns the
// link's ifindex. A link not (yet) there: an error wrapping ErrNotFound.
func (h Host) EnsureENI(e ENILink) (ifindex int, err error) {
	if err := e.validate(); err != nil {
		return 0, err
	}
	link, err := h.LinkByMAC(e.MAC)
	if err != nil {
		return 0, err
	}
	nh, done, err := h.handle()
	if err != nil {
		return 0, err
	}
	defer done()
	a := link.Attrs()
	fail := func(what string, err error) (int, error) {
		return 0, fmt.Errorf("datapath: ENI %s (%s): %s: %w", e.MAC, a.Name, what, err)
	}
	if err := h.sameNetns(link); err != nil { // before changing anything
		return fail("rp_filter", err)
	}
	if e.MTU != 0 && a.MTU != e.MTU {
		if err := nh.LinkSetMTU(link, e.MTU); err != nil {
			return fail(fmt.Sprintf("set MTU %d", e.MTU), err)
		}
	}
	if err := ensureSysctl(sysctlPath("ipv4", "conf", a.Name, "rp_filter"), "0"); err != nil {
		return fail("rp_filter 0", err)
	}
	if a.Flags&net.FlagUp == 0 {
		if err := nh.LinkSetUp(link); err != nil {
			return fail("set up", err)
		}
	}
	want := []netlink.Route{
		{LinkIndex: a.Index, Gw: net.IP(e.Gateway.AsSlice()), Flags: int(netlink.FLAG_ONLINK), Table: e.Table,
			Protocol: RouteProtocol, Scope: netlink.SCOPE_UNIVERSE, Type: unix.RTN_UNICAST, Family: netlink.FAMILY_V4},
		{LinkIndex: a.Index, Dst: prefixNet(e.CIDR), Table: e.Table, Protocol: RouteProtocol, Scope: netlink.SCOPE_LINK,
			Type: unix.RTN_UNICAST, Family: netlink.FAMILY_V4},
	}
	have, err := nh.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: e.Table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fail(fmt.Sprintf("list table %d", e.Table), err)
	}
	var errs []error
	for i := range want {
		w := &want[i]
		if !slicesContainsFunc(have, func(r netlink.Route) bool { return sameRoute(r, *w) }) {
			if err := nh.RouteReplace(w); err != nil {
				errs = append(errs, fmt.Errorf("route %s: %w", routeString(*w, a.Name), err))
			}
		}
	}
	for _, r := range have {
		if r.Protocol == RouteProtocol && !slicesContainsFunc(want, func(w netlink.Route) bool { return sameRoute(r, w) }) {
			if err := nh.RouteDel(&r); err != nil && !notFound(err) {
				errs = append(errs, fmt.Errorf("remove stale route %s: %w", r, err))
			}
		}
	}
	if len(errs) > 0 {
		return fail(fmt.Sprintf("table %d", e.Table), errors.Join(errs...))
	}
	return a.Index, nil
}

// sameNetns refuses a handle of another namespace than the calling thread's, where /proc/sys writes land.
func (h Host) sameNetns(link netlink.Link) error {
	if h.H == nil {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	nh, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer nh.Close()
	l, err := nh.LinkByIndex(link.Attrs().Index)
	if err != nil || l.Attrs().Name != link.Attrs().Name || !bytes.Equal(l.Attrs().HardwareAddr, link.Attrs().HardwareAddr) {
		return fmt.Errorf("Host.H is not a handle of the calling thread's network namespace, where sysctls are " +
			"written: use a nil H from a thread in the host namespace")
	}
	return nil
}

func slicesContainsFunc[T any](s []T, f func(T) bool) bool {
	for _, v := range s {
		if f(v) {
			return true
		}
	}
	return false
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func sameRoute(r, w netlink.Route) bool {
	return r.LinkIndex == w.LinkIndex && r.Table == w.Table && r.Scope == w.Scope && r.Protocol == w.Protocol &&
		netString(r.Dst) == netString(w.Dst) && r.Gw.Equal(w.Gw) &&
		r.Flags&int(netlink.FLAG_ONLINK) == w.Flags&int(netlink.FLAG_ONLINK) && r.Priority == w.Priority &&
		r.Type == w.Type && r.MultiPath == nil
}

func netString(n *net.IPNet) string {
	if isDefault(n) {
		return "default"
	}
	return n.String()
}

func routeString(r netlink.Route, dev string) string {
	s := netString(r.Dst)
	if r.Gw != nil {
		s += " via " + r.Gw.String()
	}
	s += " dev " + dev
	if r.Flags&int(netlink.FLAG_ONLINK) != 0 {
		s += " onlink"
	}
	return fmt.Sprintf("%s table %d", s, r.Table)
}

// Observe reads the pods' datapath from the host: veths named like HostVethName with their /32 routes of the
// main table, and the pod-shaped rules at the two priorities.
func (h Host) Observe() (Observed, error) {
	rules := h.Rules.withDefaults()
	if err := rules.validate(); err != nil {
		return Observed{}, fmt.Errorf("datapath: observe: %w", err)
	}
	nh, done, err := h.handle()
	if err != nil {
		return Observed{}, fmt.Errorf("datapath: observe: %w", err)
	}
	defer done()
	links, err := nh.LinkList()
	if err != nil {
		return Observed{}, fmt.Errorf("datapath: observe: list links: %w", err)
	}
	routes, err := nh.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return Observed{}, fmt.Errorf("datapath: observe: list routes: %w", err)
	}
	byLink := map[int][]netip.Addr{}
	for _, r := range routes {
		if a, ok := addr32(r.Dst); ok && r.Gw == nil && r.MultiPath == nil {
			byLink[r.LinkIndex] = append(byLink[r.LinkIndex], a)
		}
	}
	var o Observed
	for _, l := range links {
		name := l.Attrs().Name
		if l.Type() != "veth" || !isHostVethName(name) {
			continue
		}
		ips := byLink[l.Attrs().Index]
		if len(ips) == 0 {
			o.Pods = append(o.Pods, HostPod{Veth: name})
		}
		for _, ip := range ips {
			o.Pods = append(o.Pods, HostPod{Veth: name, IP: ip})
		}
	}
	sort.Slice(o.Pods, func(i, j int) bool {
		if o.Pods[i].Veth != o.Pods[j].Veth {
			return o.Pods[i].Veth < o.Pods[j].Veth
		}
		return o.Pods[i].IP.Less(o.Pods[j].IP)
	})
	all, err := nh.RuleList(netlink.FAMILY_V4)
	if err != nil {
		return Observed{}, fmt.Errorf("datapath: observe: list rules: %w", err)
	}
	for _, r := range all {
		if k, ok := podRuleOf(r); ok && k.Priority == rules.forDirection(k.To) {
			o.Rules = append(o.Rules, PodRule{IP: k.IP, Table: k.Table})
		}
	}
	sortPodRules(o.Rules)
	return o, nil
}

func sortPodRules(rs []PodRule) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].IP != rs[j].IP {
			return rs[i].IP.Less(rs[j].IP)
		}
		return rs[i].Table < rs[j].Table
	})
}

// SyncRules makes the IPv4 rules at exactly Rules.ToPod and Rules.FromPod those of want: for each {IP, Table},
// "to IP/32 lookup main" at ToPod and "from IP/32 lookup Table" at FromPod. Missing ones are added first, then
// every other rule at those two priorities is removed (weft owns them); rules at any other priority, and IPv6
// rules (SyncRules6), are never touched, nor are the rules of an address in hold (a pod whose ADD is under way:
// its rules are the plugin's to make). It carries on past a failing rule and returns all failures. An invalid
// want (an address twice with two tables, a bad table or address) changes nothing.
func (h Host) SyncRules(want []PodRule, hold []netip.Addr) error {
	return h.syncRules(netlink.FAMILY_V4, want, hold)
}

// syncRules is SyncRules for one family's rules.
func (h Host) syncRules(family int, want []PodRule, hold []netip.Addr) error {
	what, fam := "sync rules", "an IPv4"
	if family == netlink.FAMILY_V6 {
		what, fam = "sync IPv6 rules", "an IPv6"
	}
	rules := h.Rules.withDefaults()
	if err := rules.validate(); err != nil {
		return fmt.Errorf("datapath: %s: %w", what, err)
	}
	desired := map[podRule]bool{}
	table := map[netip.Addr]int{}
	var errs []error
	for i, w := range want {
		switch {
		case !w.IP.IsValid() || w.IP.Is4() != (family == netlink.FAMILY_V4) || w.IP.Is4In6():
			errs = append(errs, fmt.Errorf("want[%d].IP %v: want %s address", i, w.IP, fam))
		case validTable(w.Table) != nil:
			errs = append(errs, fmt.Errorf("want[%d].Table %d: %w", i, w.Table, validTable(w.Table)))
		case table[w.IP] != 0 && table[w.IP] != w.Table:
			errs = append(errs, fmt.Errorf("want[%d]: %s wanted with tables %d and %d", i, w.IP, table[w.IP], w.Table))
		default:
			table[w.IP] = w.Table
			desired[podRule{Priority: rules.ToPod, To: true, IP: w.IP, Table: unix.RT_TABLE_MAIN}] = true
			desired[podRule{Priority: rules.FromPod, IP: w.IP, Table: w.Table}] = true
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("datapath: %s: %w", what, errors.Join(errs...))
	}
	nh, done, err := h.handle()
	if err != nil {
		return fmt.Errorf("datapath: %s: %w", what, err)
	}
	defer done()
	have, err := nh.RuleList(family)
	if err != nil {
		return fmt.Errorf("datapath: %s: list rules: %w", what, err)
	}
	held := make(map[netip.Addr]bool, len(hold))
	for _, a := range hold {
		held[a] = true
	}
	present := map[podRule]bool{}
	var unwanted []netlink.Rule
	for _, r := range have {
		if r.Priority != rules.ToPod && r.Priority != rules.FromPod {
			continue
		}
		k, ok := podRuleOf(r)
		if ok && held[k.IP] && table[k.IP] == 0 {
			continue // the plugin's, while its ADD is under way
		}
		if ok && desired[k] && !present[k] {
			present[k] = true
			continue
		}
		unwanted = append(unwanted, r) // foreign-shaped, not wanted, or a duplicate
	}
	add := make([]podRule, 0, len(desired))
	for k := range desired {
		if !present[k] {
			add = append(add, k)
		}
	}
	sort.Slice(add, func(i, j int) bool { return add[i].String() < add[j].String() })
	for _, k := range add {
		if err := nh.RuleAdd(k.rule()); err != nil {
			errs = append(errs, fmt.Errorf("add %s: %w", k, err))
		}
	}
	for _, r := range unwanted {
		if err := nh.RuleDel(&r); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", r, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("datapath: %s: %w", what, errors.Join(errs...))
	}
	return nil
}
