package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/nsutil"
)

// Fabric turns the emulated cloud into real traffic (needs root). It builds a "VPC router" network namespace
// holding one bridge per vSwitch (with the vSwitch gateway address, x.y.z.253 in a /24) and one namespace per
// instance whose eth0 carries the instance's primary address and MAC and a default route to the gateway. Sync then
// keeps the kernel equal to the API state:
//   - each Available custom route entry with an Instance next hop is a route in the router namespace,
//     <destination> via <instance primary address>;
//   - each InUse ENI is a veth whose instance end, named eth<DeviceIndex> and carrying the ENI's MAC, sits in the
//     instance's namespace; its router end answers ARP for the gateway (proxy ARP);
//   - each address of such an ENI (primary and secondary) is a host route in the router namespace to that veth
//     and a permanent neighbour entry address -> the ENI's MAC on it: the VPC knows where each address lives and
//     never ARPs towards an instance for it, so an address reaches its instance only through the ENI it is
//     assigned to, and an address on no ENI is not routed (the vSwitch bridge only resolves what instances
//     answer for themselves: their primaries); the bridges answer ARP for ENI addresses (proxy ARP) and
//     neighbour solicitations for ENI IPv6 addresses (proxy NDP, fabric_v6.go), so a host of the same vSwitch
//     reaches them through the router as the VPC delivers them; an ENI's veth answers ARP and, for IPv6, neighbour
//     solicitations for the rest of its block (the instance resolves such hosts on-link through the ENI).
//
// Unassigning an address removes its route and neighbour; detaching or deleting the ENI removes its veth.
// An ENI is tracked by its veth's router end: the instance end may be moved into a pod's namespace and renamed
// (the eni backend's exclusive mode) and Sync leaves it there; when that namespace is deleted the kernel
// destroys the veth (a real NIC would return to the host instead), and the next Sync makes the ENI again in its
// instance's namespace, as eth<DeviceIndex> with its MAC, as a real ENI reappears on its host.
// Sync reads the kernel state with netlink and writes only differences: a Sync with nothing changed runs no
// command. Each instance namespace also serves its metadata on 100.100.100.200:80.
type Fabric struct {
	w      *World
	prefix string
	Router string            // router namespace name
	NS     map[string]string // instance id -> namespace name

	mu      sync.Mutex
	servers []*http.Server
	mds     []*Metadata
	enis    map[string]fabricLink // ENI id -> its veth
	bridges map[string]string     // vSwitch id -> its bridge in the router namespace
	// commands counts the commands Sync ran (tests: a Sync with nothing new runs none).
	commands int
}

// fabricLink is the veth of an attached ENI: its router-side name and the attachment it was made for.
type fabricLink struct {
	name, instance string
	device         int
}

const fabricProto = 99 // routes the fabric owns in the router namespace

// NewFabric builds the namespaces for the world's VPC, vSwitches and instances. prefix (a few letters) names them.
func NewFabric(w *World, prefix string) (*Fabric, error) {
	f := &Fabric{w: w, prefix: prefix, Router: prefix + "-vpc", NS: map[string]string{}, enis: map[string]fabricLink{}, bridges: map[string]string{}}
	w.mu.Lock()
	sws := append([]*VSwitch(nil), w.st.VSwitches...)
	ins := append([]*Instance(nil), w.st.Instances...)
	w.mu.Unlock()
	run := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	steps := [][]string{{"netns", "add", f.Router}, {"-n", f.Router, "link", "set", "lo", "up"}}
	bridge := map[string]string{}
	for i, sw := range sws {
		br := fmt.Sprintf("br%d", i)
		bridge[sw.ID] = br
		f.bridges[sw.ID] = br
		p, err := netip.ParsePrefix(sw.CIDR)
		if err != nil {
			return nil, fmt.Errorf("vSwitch %s: %w", sw.ID, err)
		}
		steps = append(steps, []string{"-n", f.Router, "link", "add", br, "type", "bridge"},
			[]string{"-n", f.Router, "addr", "add", fmt.Sprintf("%s/%d", gateway(sw.CIDR), p.Bits()), "dev", br},
			[]string{"-n", f.Router, "link", "set", br, "up"})
		if gw6 := gateway6(sw.IPv6CIDR); gw6 != "" {
			steps = append(steps, []string{"-n", f.Router, "addr", "add", gw6, "dev", br, "nodad"})
		}
	}
	for i, in := range ins {
		ns := fmt.Sprintf("%s-%s", prefix, in.ID)
		f.NS[in.ID] = ns
		sw := w.vswitch(in.VSwitchID)
		p, _ := netip.ParsePrefix(sw.CIDR)
		host := fmt.Sprintf("vi%d", i)
		steps = append(steps, []string{"netns", "add", ns}, []string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"-n", f.Router, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"-n", f.Router, "link", "set", host, "master", bridge[in.VSwitchID], "up"},
			[]string{"-n", ns, "link", "set", "eth0", "address", in.MAC},
			[]string{"-n", ns, "addr", "add", fmt.Sprintf("%s/%d", in.PrimaryIP, p.Bits()), "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
			[]string{"-n", ns, "route", "add", "default", "via", gateway(sw.CIDR)},
			[]string{"-n", ns, "addr", "add", "100.100.100.200/32", "dev", "lo"})
		if gw6 := gateway6(sw.IPv6CIDR); gw6 != "" && in.PrimaryIPv6 != "" {
			p6, _ := netip.ParsePrefix(sw.IPv6CIDR)
			steps = append(steps, []string{"-n", ns, "addr", "add", fmt.Sprintf("%s/%d", in.PrimaryIPv6, p6.Bits()), "dev", "eth0", "nodad"},
				[]string{"-n", ns, "-6", "route", "add", "default", "via", strings.Split(gw6, "/")[0]})
		}
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			f.Close()
			return nil, err
		}
	}
	// A vSwitch delivers an ENI's addresses to the ENI even to hosts in the same block, which ARP for them on
	// the segment: the router answers for every address it routes through another link (an ENI's veth).
	for _, br := range bridge {
		if err := run("netns", "exec", f.Router, "sysctl", "-qw", "net.ipv4.conf."+br+".proxy_arp=1"); err != nil {
			f.Close()
			return nil, err
		}
	}
	for _, ns := range append([]string{f.Router}, values(f.NS)...) {
		_ = exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1").Run()
		_ = exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1").Run()
	}
	if err := f.proxyNDPOn(sws); err != nil { // fabric_v6.go
		f.Close()
		return nil, err
	}
	for id, ns := range f.NS {
		if err := f.serveMetadata(id, ns); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, f.Sync()
}

func values(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func (f *Fabric) serveMetadata(instance, ns string) error {
	var ln net.Listener
	if err := nsutil.DoNamed(ns, func() (err error) { ln, err = net.Listen("tcp", "100.100.100.200:80"); return err }); err != nil {
		return fmt.Errorf("metadata in %s: %w", ns, err)
	}
	md := NewMetadata(f.w, instance)
	s := &http.Server{Handler: md, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.Serve(ln) }()
	f.mu.Lock()
	f.servers, f.mds = append(f.servers, s), append(f.mds, md)
	f.mu.Unlock()
	return nil
}

// SetMetadataLag sets the Lag of every instance's metadata server (default 1 s).
func (f *Fabric) SetMetadataLag(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.mds {
		m.SetLag(d)
	}
}

// Run syncs every period until ctx ends.
func (f *Fabric) Run(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = f.Sync()
		}
	}
}

// fabricView is what Sync needs from the world, copied under the lock.
type fabricView struct {
	routes  map[string]string // destination -> next-hop address
	enis    []ENI
	members []ENI // InUse trunk members (fabric_trunk.go)
	inst    map[string]*Instance
}

func (f *Fabric) view() fabricView {
	w := f.w
	w.mu.Lock()
	defer w.mu.Unlock()
	w.settle()
	now := w.clock.Now()
	v := fabricView{routes: map[string]string{}, inst: map[string]*Instance{}}
	for _, in := range w.st.Instances {
		c := *in
		v.inst[in.ID] = &c
	}
	for _, t := range w.st.RouteTables {
		for _, e := range t.Entries {
			if e.Type != "Custom" || e.NextHopType != "Instance" || w.status(e, now) != "Available" {
				continue
			}
			if in := v.inst[e.NextHopID]; in != nil {
				if strings.Contains(e.Dst, ":") {
					if in.PrimaryIPv6 != "" {
						v.routes[e.Dst] = in.PrimaryIPv6
					}
				} else {
					v.routes[e.Dst] = in.PrimaryIP
				}
			}
		}
	}
	for _, e := range w.st.ENIs {
		if e.status() == "InUse" && !e.member() {
			v.enis = append(v.enis, *e)
		} else if e.status() == "InUse" { // members ride their trunk: fabric_trunk.go
			v.members = append(v.members, *e)
		}
	}
	return v
}

// Sync makes the namespaces match the API state.
func (f *Fabric) Sync() error {
	v := f.view()
	rns, err := netns.GetFromName(f.Router)
	if err != nil {
		return err
	}
	defer rns.Close()
	h, err := netlink.NewHandleAt(rns)
	if err != nil {
		return err
	}
	defer h.Close()
	var errs []error
	// ENI links first, so host routes can point at them.
	f.mu.Lock()
	defer f.mu.Unlock()
	want := map[string]ENI{}
	for _, e := range v.enis {
		want[e.ID] = e
	}
	for id, link := range f.enis {
		if e, ok := want[id]; !ok || e.InstanceID != link.instance || e.DeviceIndex != link.device {
			if l, err := h.LinkByName(link.name); err == nil {
				_ = h.LinkDel(l) // removes the instance end too
			}
			delete(f.enis, id)
		}
	}
	hostRoutes := map[string]int{} // address -> router-side link index
	type neigh struct {
		link int
		ip   string
	}
	neighs := map[neigh]net.HardwareAddr{} // what the VPC knows: address on that veth -> the ENI's MAC
	for id, e := range want {
		link, ok := f.enis[id]
		if ok && f.vanished(h, link) {
			// The pair is gone: its instance end was moved into a pod's namespace (exclusive ENI mode) and that
			// namespace was deleted, which destroys a veth (a real NIC would come back to the host): the ENI
			// reappears in its instance, as eth<DeviceIndex>, as a real one would.
			delete(f.enis, id)
			ok = false
		}
		if !ok {
			link = fabricLink{name: "ve" + strings.TrimPrefix(id, "eni-"), instance: e.InstanceID, device: e.DeviceIndex}
			if len(link.name) > 12 { // interface names are at most 15 bytes
				link.name = link.name[:12]
			}
			ns := f.NS[e.InstanceID]
			if ns == "" {
				continue
			}
			err := f.run("ip", "-n", f.Router, "link", "add", link.name, "type", "veth", "peer", "name", fmt.Sprintf("eth%d", e.DeviceIndex), "netns", ns)
			if err == nil {
				err = f.run("ip", "-n", ns, "link", "set", fmt.Sprintf("eth%d", e.DeviceIndex), "address", e.MAC)
			}
			if err == nil {
				err = f.run("ip", "-n", f.Router, "link", "set", link.name, "up")
			}
			if err == nil {
				err = f.run("ip", "netns", "exec", f.Router, "sysctl", "-qw", "net.ipv4.conf."+link.name+".proxy_arp=1")
			}
			if err == nil { // proxy NDP answers at once (fabric_v6.go)
				err = f.run("ip", "netns", "exec", f.Router, "sysctl", "-qw", "net.ipv6.neigh."+link.name+".proxy_delay=0")
			}
			if err != nil {
				if l, lerr := h.LinkByName(link.name); lerr == nil {
					_ = h.LinkDel(l) // half made: the next Sync starts again
				}
				errs = append(errs, fmt.Errorf("ENI %s: %w", id, err))
				continue
			}
			f.enis[id] = link
		}
		l, err := h.LinkByName(link.name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		mac, err := net.ParseMAC(e.MAC)
		if err != nil {
			errs = append(errs, fmt.Errorf("ENI %s: MAC %q: %w", id, e.MAC, err))
			continue
		}
		for _, a := range append([]string{e.PrimaryIP}, e.Secondary...) {
			hostRoutes[a+"/32"] = l.Attrs().Index
			neighs[neigh{l.Attrs().Index, a}] = mac
		}
		idx := l.Attrs().Index
		if err := f.syncENIv6(h, l, e, func(dst string) { hostRoutes[dst] = idx }, func(ip string) { neighs[neigh{idx, ip}] = mac }); err != nil { // fabric_v6.go
			errs = append(errs, err)
		}
	}
	// Trunk members: their addresses on their trunk's veth, at their MACs (fabric_trunk.go).
	maddrs, merrs := f.memberAddrs(h, v.members)
	errs = append(errs, merrs...)
	for _, m := range maddrs {
		hostRoutes[m.ip+"/32"] = m.link
		neighs[neigh{m.link, m.ip}] = m.mac
	}
	// Neighbours: on each ENI veth exactly the permanent entries of its addresses.
	for _, link := range f.enis {
		l, err := h.LinkByName(link.name)
		if err != nil {
			continue
		}
		idx := l.Attrs().Index
		cur, err := neighList46(h, idx) // fabric_v6.go
		if err != nil {
			errs = append(errs, fmt.Errorf("neighbours of %s: %w", link.name, err))
			continue
		}
		for _, n := range cur {
			k := neigh{idx, n.IP.String()}
			if mac, ok := neighs[k]; ok && n.State&netlink.NUD_PERMANENT != 0 && n.HardwareAddr.String() == mac.String() {
				delete(neighs, k)
				continue
			}
			if n.State&netlink.NUD_PERMANENT != 0 {
				if err := h.NeighDel(&n); err != nil {
					errs = append(errs, fmt.Errorf("neighbour %s on %s: %w", n.IP, link.name, err))
				}
			}
		}
	}
	for k, mac := range neighs {
		n := netlink.Neigh{LinkIndex: k.link, Family: neighFamily(k.ip), State: netlink.NUD_PERMANENT, IP: net.ParseIP(k.ip), HardwareAddr: mac}
		if err := h.NeighSet(&n); err != nil {
			errs = append(errs, fmt.Errorf("neighbour %s: %w", k.ip, err))
		}
	}
	// Proxy NDP: the bridges answer for the ENIs' IPv6 addresses, the ENI veths for the rest of their block (fabric_v6.go).
	errs = append(errs, f.syncProxyNDP(h, v)...)
	// Routes the fabric owns: route entries and ENI host routes.
	current, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Protocol: fabricProto}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	current6, err := h.RouteListFiltered(unix.AF_INET6, &netlink.Route{Protocol: fabricProto}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	current = append(current, current6...)
	desired := map[string]netlink.Route{}
	for dst, via := range v.routes {
		_, n, err := net.ParseCIDR(dst)
		if err != nil {
			continue
		}
		desired[n.String()] = netlink.Route{Dst: n, Gw: net.ParseIP(via), Protocol: fabricProto}
	}
	for dst, idx := range hostRoutes {
		_, n, err := net.ParseCIDR(dst)
		if err != nil {
			continue
		}
		desired[n.String()] = netlink.Route{Dst: n, LinkIndex: idx, Scope: netlink.SCOPE_LINK, Protocol: fabricProto}
	}
	for _, r := range current {
		d, ok := desired[r.Dst.String()]
		if ok && r.Gw.Equal(d.Gw) && (d.LinkIndex == 0 || d.LinkIndex == r.LinkIndex) {
			delete(desired, r.Dst.String())
			continue
		}
		if !ok {
			if err := h.RouteDel(&r); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, r := range desired {
		r := r
		if err := h.RouteReplace(&r); err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", r.Dst, err))
		}
	}
	return errors.Join(errs...)
}

// vanished says whether an ENI's veth is gone from the router (looked up by its router-side end, which never
// moves: the instance end may be anywhere, renamed, inside a pod's namespace below the instance's).
func (f *Fabric) vanished(h *netlink.Handle, link fabricLink) bool {
	_, err := h.LinkByName(link.name)
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// run runs one command for Sync (mu held), counting it.
func (f *Fabric) run(name string, args ...string) error {
	f.commands++
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Close stops the metadata servers and deletes the namespaces.
func (f *Fabric) Close() {
	f.mu.Lock()
	for _, s := range f.servers {
		_ = s.Close()
	}
	f.mu.Unlock()
	for _, ns := range f.NS {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
	_ = exec.Command("ip", "netns", "del", f.Router).Run()
}

// gateway6 is the router's address in a vSwitch IPv6 block (the block's first host, ::1), with its length.
func gateway6(cidr string) string {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is6() {
		return ""
	}
	return fmt.Sprintf("%s/%d", p.Masked().Addr().Next(), p.Bits())
}
