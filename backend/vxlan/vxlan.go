// Package vxlan is weft's vxlan backend, wire compatible with upstream flanneld's so that weft and flannel nodes
// exchange pod traffic.
//
// Each node has one vxlan device per address family, flannel.<VNI> (flannel-v6.<VNI>), with learning off, its
// UDP port (8472 by default), its local address on the external interface, and the node subnet's network address
// as a /32 (/128). The device MAC (VtepMAC) is published in the lease's BackendData, {"VNI":1,"VtepMAC":"..."},
// and kept across restarts. For every peer lease of type vxlan the node holds three kernel entries on the device:
//
//	neighbour  <peer subnet address> lladdr <peer VtepMAC> PERMANENT
//	fdb        <peer VtepMAC> dst <peer PublicIP> self permanent
//	route      <peer subnet> via <peer subnet address> dev flannel.<VNI> onlink
//
// With DirectRouting, a peer whose PublicIP is on the external interface's link is routed directly
// (<peer subnet> via <peer PublicIP>) and needs no encapsulation. Desired (desired.go) computes these entries
// purely from the peer set; the reconcile makes the kernel match them exactly through backend.SyncNeigh, SyncFDB
// and SyncRoutes, deleting entries of vanished peers, on every event and every resync, so a restart or a
// hand-deleted entry is repaired; a device deleted by hand is recreated with its MAC (ensurePresent).
package vxlan

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/internal/logonce"
	"github.com/weftnet/weft/subnet"
)

// Name is the backend's net-conf Backend.Type.
const Name = "vxlan"

const (
	encapOverheadV4 = 50
	encapOverheadV6 = 70
)

func init() {
	backend.Register(Name, New)
	backend.RegisterConfigCheck(Name, func(raw json.RawMessage) error { _, err := parseConfig(raw); return err })
}

// Config is the vxlan part of net-conf.json's Backend object (keys case-insensitive).
type Config struct {
	VNI           int
	Port          int
	MTU           int
	GBP           bool
	Learning      bool
	DirectRouting bool
}

// leaseData is BackendData / BackendV6Data: upstream's {"VNI":1,"VtepMAC":"..."}.
type leaseData struct {
	VNI     int
	VtepMAC string
}

type vxlanBackend struct {
	deps backend.Deps
	h    *netlink.Handle
}

// New builds the vxlan backend.
func New(deps backend.Deps) (backend.Backend, error) {
	h, err := deps.Handle()
	if err != nil {
		return nil, fmt.Errorf("vxlan: netlink: %w", err)
	}
	return &vxlanBackend{deps: deps, h: h}, nil
}

func parseConfig(raw json.RawMessage) (Config, error) {
	c := Config{VNI: 1}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &c); err != nil {
			return c, fmt.Errorf("Backend (vxlan): %w", err)
		}
	}
	if c.VNI < 0 || c.VNI > 1<<24-1 {
		return c, fmt.Errorf("Backend.VNI: %d is not a VNI from 0 to 16777215", c.VNI)
	}
	if c.Port < 0 || c.Port > 65535 {
		return c, fmt.Errorf("Backend.Port: %d is not a UDP port", c.Port)
	}
	if c.MTU < 0 {
		return c, fmt.Errorf("Backend.MTU: %d is negative", c.MTU)
	}
	return c, nil
}

// device is one family's vxlan device, with what it takes to make it again: a device deleted by hand while weftd
// runs is recreated by the next reconcile with the same settings, MAC and address.
type device struct {
	link   *netlink.Vxlan
	family int
	mac    net.HardwareAddr
	local  netip.Addr   // source address on the external interface
	mtu    int          // device MTU
	addr   netip.Prefix // the subnet's network address as /32 or /128, set once the lease is known
}

type network struct {
	b        *vxlanBackend
	cfg      Config
	lease    *subnet.Lease
	v4, v6   *device
	mtu      int
	network  netip.Prefix // cluster networks, for owned routes
	network6 netip.Prefix
	warned   logonce.Set // peers skipped for bad data, logged once each
}

func (b *vxlanBackend) RegisterNetwork(ctx context.Context, sc *subnet.Config) (backend.Network, error) {
	cfg, err := parseConfig(sc.Backend)
	if err != nil {
		return nil, err
	}
	ei := b.deps.ExtIface
	baseMTU := ei.Iface.MTU
	if cfg.MTU > 0 {
		baseMTU = cfg.MTU
	}
	// Keep the VtepMAC this node published before, so peers' FDB entries stay valid across restarts.
	attrs := &subnet.LeaseAttrs{PublicIP: ei.ExtAddr, PublicIPv6: ei.ExtV6Addr, BackendType: Name}
	if !sc.EnableIPv4 {
		attrs.PublicIP = netip.Addr{}
	}
	if !sc.EnableIPv6 {
		attrs.PublicIPv6 = netip.Addr{}
	}
	var prevMAC4, prevMAC6 net.HardwareAddr
	if prev, err := b.deps.SubnetManager.PreviousLease(ctx, attrs); err != nil {
		return nil, fmt.Errorf("vxlan: read previous lease: %w", err)
	} else if prev != nil && prev.Attrs.BackendType == Name {
		prevMAC4 = macFrom(prev.Attrs.BackendData)
		prevMAC6 = macFrom(prev.Attrs.BackendV6Data)
	}
	nw := &network{b: b, cfg: cfg, network: sc.Network, network6: sc.IPv6Network}
	if sc.EnableIPv4 {
		if !ei.IfaceAddr.IsValid() {
			return nil, fmt.Errorf("vxlan: interface %s has no IPv4 address", ei.Iface.Name)
		}
		nw.v4, err = b.ensureDevice(fmt.Sprintf("flannel.%d", cfg.VNI), cfg, ei.IfaceAddr, baseMTU-encapOverheadV4, prevMAC4, netlink.FAMILY_V4)
		if err != nil {
			return nil, err
		}
		data, _ := json.Marshal(leaseData{VNI: cfg.VNI, VtepMAC: nw.v4.mac.String()})
		attrs.BackendData = data
		nw.mtu = baseMTU - encapOverheadV4
	}
	if sc.EnableIPv6 {
		if !ei.IfaceV6.IsValid() {
			return nil, fmt.Errorf("vxlan: interface %s has no IPv6 address", ei.Iface.Name)
		}
		nw.v6, err = b.ensureDevice(fmt.Sprintf("flannel-v6.%d", cfg.VNI), cfg, ei.IfaceV6, baseMTU-encapOverheadV6, prevMAC6, netlink.FAMILY_V6)
		if err != nil {
			return nil, err
		}
		data, _ := json.Marshal(leaseData{VNI: cfg.VNI, VtepMAC: nw.v6.mac.String()})
		attrs.BackendV6Data = data
		if !sc.EnableIPv4 {
			nw.mtu = baseMTU - encapOverheadV6
		}
	}
	l, err := b.deps.SubnetManager.AcquireLease(ctx, attrs)
	if err != nil {
		return nil, fmt.Errorf("acquire lease: %w", err)
	}
	nw.lease = l
	if nw.v4 != nil {
		if err := b.configure(nw.v4, netip.PrefixFrom(l.Subnet.Masked().Addr(), 32)); err != nil {
			return nil, err
		}
	}
	if nw.v6 != nil {
		if err := b.configure(nw.v6, netip.PrefixFrom(l.IPv6Subnet.Masked().Addr(), 128)); err != nil {
			return nil, err
		}
	}
	return nw, nil
}

// macFrom is the VtepMAC of a lease's BackendData, or nil.
func macFrom(raw json.RawMessage) net.HardwareAddr {
	m, _ := vtepMAC(raw)
	return m
}

// ensureDevice accepts an existing compatible device, recreates an incompatible one, or creates it.
func (b *vxlanBackend) ensureDevice(name string, cfg Config, local netip.Addr, mtu int, mac net.HardwareAddr, fam int) (*device, error) {
	ei := b.deps.ExtIface
	want := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: name, MTU: mtu},
		VxlanId:      cfg.VNI,
		VtepDevIndex: ei.Iface.Index,
		SrcAddr:      net.IP(local.AsSlice()),
		Port:         cfg.Port,
		Learning:     cfg.Learning,
		GBP:          cfg.GBP,
	}
	if want.Port == 0 {
		want.Port = 8472
	}
	if existing, err := b.h.LinkByName(name); err == nil {
		if vx, ok := existing.(*netlink.Vxlan); ok && compatible(vx, want) {
			if mac != nil && vx.HardwareAddr.String() != mac.String() {
				if err := b.h.LinkSetHardwareAddr(vx, mac); err != nil {
					return nil, fmt.Errorf("set VtepMAC on %s: %w", name, err)
				}
				vx.HardwareAddr = mac
			}
			if vx.MTU != mtu {
				if err := b.h.LinkSetMTU(vx, mtu); err != nil {
					return nil, fmt.Errorf("set MTU on %s: %w", name, err)
				}
			}
			klog.Infof("vxlan: reusing existing device %s (VtepMAC %s)", name, vx.HardwareAddr)
			return &device{link: vx, family: fam, mac: vx.HardwareAddr, local: local, mtu: mtu}, nil
		}
		klog.Warningf("vxlan: device %s exists with incompatible settings; recreating it", name)
		if err := b.h.LinkDel(existing); err != nil {
			return nil, fmt.Errorf("delete incompatible %s: %w", name, err)
		}
	}
	if mac == nil {
		mac = randomMAC()
	}
	want.HardwareAddr = mac
	if err := b.h.LinkAdd(want); err != nil {
		return nil, fmt.Errorf("create vxlan device %s: %w", name, err)
	}
	l, err := b.h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("read back %s: %w", name, err)
	}
	vx := l.(*netlink.Vxlan)
	klog.Infof("vxlan: created %s (VNI %d, port %d, VtepMAC %s, MTU %d)", name, cfg.VNI, want.Port, vx.HardwareAddr, vx.MTU)
	return &device{link: vx, family: fam, mac: vx.HardwareAddr, local: local, mtu: mtu}, nil
}

func compatible(have, want *netlink.Vxlan) bool {
	return have.VxlanId == want.VxlanId && have.VtepDevIndex == want.VtepDevIndex &&
		have.SrcAddr.Equal(want.SrcAddr) && have.Port == want.Port && have.Learning == want.Learning && have.GBP == want.GBP
}

func randomMAC() net.HardwareAddr {
	m := make(net.HardwareAddr, 6)
	_, _ = rand.Read(m)
	m[0] = (m[0] | 0x02) & 0xfe // locally administered, unicast
	return m
}

// configure puts exactly addr on the device and brings it up.
func (b *vxlanBackend) configure(d *device, addr netip.Prefix) error {
	d.addr = addr
	addrs, err := b.h.AddrList(d.link, d.family)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", d.link.Name, err)
	}
	found := false
	for _, a := range addrs {
		if a.IPNet.String() == backend.PrefixToIPNet(addr).String() {
			found = true
			continue
		}
		if a.Scope == unix.RT_SCOPE_LINK {
			continue
		}
		if err := b.h.AddrDel(d.link, &a); err != nil {
			return fmt.Errorf("remove stale address %s from %s: %w", a.IPNet, d.link.Name, err)
		}
	}
	if !found {
		if err := b.h.AddrAdd(d.link, &netlink.Addr{IPNet: backend.PrefixToIPNet(addr)}); err != nil {
			return fmt.Errorf("add %s to %s: %w", addr, d.link.Name, err)
		}
	}
	if err := b.h.LinkSetUp(d.link); err != nil {
		return fmt.Errorf("bring up %s: %w", d.link.Name, err)
	}
	return nil
}

func (nw *network) Run(ctx context.Context) {
	backend.RunLoop(ctx, Name, nw.b.deps, nw.lease, func(l subnet.Lease) bool {
		return l.Attrs.BackendType == Name
	}, nw.reconcile)
}

// reconcile makes the kernel's vxlan entries match the peers.
func (nw *network) reconcile(peers backend.Peers) error {
	var errs []error
	if nw.v4 != nil {
		errs = append(errs, nw.reconcileFamily(nw.v4, peers))
	}
	if nw.v6 != nil {
		errs = append(errs, nw.reconcileFamily(nw.v6, peers))
	}
	return errors.Join(errs...)
}

// reconcileFamily plans one family's entries from the peers and applies them: neighbours first (the routes use
// them), then the forwarding database, then the routes.
func (nw *network) reconcileFamily(d *device, peers backend.Peers) error {
	h := nw.b.h
	if err := nw.ensurePresent(d); err != nil {
		return err
	}
	self := Self{Family: d.family, Device: d.link.Index, Ext: nw.b.deps.ExtIface.Iface.Index, Cluster: nw.network,
		DirectRouting: nw.cfg.DirectRouting}
	if d.family == netlink.FAMILY_V6 {
		self.Cluster = nw.network6
	}
	if self.DirectRouting {
		self.OnLink = backend.OnLink(h, self.Ext, backend.PublicAddrs(peers, d.family))
	}
	st := Desired(peers, self)
	skipped := map[string]bool{}
	for _, s := range st.Skipped {
		key := d.link.Name + "/" + s.Peer
		skipped[key] = true
		if nw.warned.First(key, s.Reason) {
			klog.Warningf("vxlan: peer %s skipped on %s: %s", s.Peer, d.link.Name, s.Reason)
		}
	}
	nw.warned.Keep(func(k string) bool { return !strings.HasPrefix(k, d.link.Name+"/") || skipped[k] })
	return errors.Join(
		backend.SyncNeigh(h, d.link, d.family, st.Neigh),
		backend.SyncFDB(h, d.link, st.FDB),
		backend.SyncRoutes(h, d.family, st.Routes, self.Owns),
	)
}

// ensurePresent recreates d's device when it is gone (deleted by hand, or by another tool), with the MAC the lease
// publishes, so the peers' FDB and neighbour entries for this node stay right, and puts its address back. The
// kernel removed the device's routes, neighbours and FDB entries with it; the reconcile that follows adds them.
func (nw *network) ensurePresent(d *device) error {
	name := d.link.Name
	l, err := nw.b.h.LinkByName(name)
	if err == nil && l.Attrs().Index == d.link.Index {
		return nil
	}
	var notFound netlink.LinkNotFoundError
	if err != nil && !errors.As(err, &notFound) {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	klog.Warningf("vxlan: device %s is gone or was replaced; recreating it with VtepMAC %s", name, d.mac)
	nd, err := nw.b.ensureDevice(name, nw.cfg, d.local, d.mtu, d.mac, d.family)
	if err != nil {
		return err
	}
	if err := nw.b.configure(nd, d.addr); err != nil {
		return err
	}
	*d = *nd
	return nil
}
