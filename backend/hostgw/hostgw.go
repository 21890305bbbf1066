// Package hostgw is weft's host-gw backend, as upstream flanneld's: no encapsulation; every peer's subnet is
// routed via the peer's public address on the external interface, so all nodes must share one L2 segment.
// The reconcile keeps exactly one route per live peer (IPv4 and IPv6) and deletes routes of vanished peers; only
// routes on the external interface into the cluster network are considered weft's.
package hostgw

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/subnet"
)

// Name is the backend's net-conf Backend.Type.
const Name = "host-gw"

func init() { backend.Register(Name, New) }

type hostgw struct {
	deps backend.Deps
	h    *netlink.Handle
}

// New builds the host-gw backend.
func New(deps backend.Deps) (backend.Backend, error) {
	h, err := deps.Handle()
	if err != nil {
		return nil, fmt.Errorf("host-gw: netlink: %w", err)
	}
	return &hostgw{deps: deps, h: h}, nil
}

type network struct {
	b      *hostgw
	lease  *subnet.Lease
	sc     *subnet.Config
	warned map[string]bool
}

func (b *hostgw) RegisterNetwork(ctx context.Context, sc *subnet.Config) (backend.Network, error) {
	ei := b.deps.ExtIface
	attrs := &subnet.LeaseAttrs{BackendType: Name}
	if sc.EnableIPv4 {
		if !ei.ExtAddr.IsValid() {
			return nil, fmt.Errorf("host-gw: interface %s has no IPv4 address", ei.Iface.Name)
		}
		attrs.PublicIP = ei.ExtAddr
	}
	if sc.EnableIPv6 {
		if !ei.ExtV6Addr.IsValid() {
			return nil, fmt.Errorf("host-gw: interface %s has no IPv6 address", ei.Iface.Name)
		}
		attrs.PublicIPv6 = ei.ExtV6Addr
	}
	l, err := b.deps.SubnetManager.AcquireLease(ctx, attrs)
	if err != nil {
		return nil, fmt.Errorf("acquire lease: %w", err)
	}
	return &network{b: b, lease: l, sc: sc, warned: map[string]bool{}}, nil
}

func (nw *network) Lease() *subnet.Lease { return nw.lease }
func (nw *network) MTU() int             { return nw.b.deps.ExtIface.Iface.MTU }

func (nw *network) Run(ctx context.Context) {
	backend.RunLoop(ctx, Name, nw.b.deps, nw.lease, func(l subnet.Lease) bool {
		return l.Attrs.BackendType == Name
	}, nw.reconcile)
}

func (nw *network) reconcile(peers backend.Peers) error {
	ext := nw.b.deps.ExtIface.Iface.Index
	var want4, want6 []netlink.Route
	var errs []error
	for k, l := range peers {
		if nw.sc.EnableIPv4 && l.Subnet.IsValid() && l.Attrs.PublicIP.IsValid() {
			if r, err := nw.route(k, l.Subnet, l.Attrs.PublicIP, ext); err == nil {
				want4 = append(want4, r)
			} else {
				errs = append(errs, err)
			}
		}
		if nw.sc.EnableIPv6 && l.IPv6Subnet.IsValid() && l.Attrs.PublicIPv6.IsValid() {
			if r, err := nw.route(k, l.IPv6Subnet, l.Attrs.PublicIPv6, ext); err == nil {
				want6 = append(want6, r)
			} else {
				errs = append(errs, err)
			}
		}
	}
	owned := func(cluster netip.Prefix) func(netlink.Route) bool {
		return func(r netlink.Route) bool {
			return r.LinkIndex == ext && r.Gw != nil && backend.InPrefix(r, cluster)
		}
	}
	if nw.sc.EnableIPv4 {
		errs = append(errs, backend.SyncRoutes(nw.b.h, netlink.FAMILY_V4, want4, owned(nw.sc.Network)))
	}
	if nw.sc.EnableIPv6 {
		errs = append(errs, backend.SyncRoutes(nw.b.h, netlink.FAMILY_V6, want6, owned(nw.sc.IPv6Network)))
	}
	return errors.Join(errs...)
}

// route builds a peer's route, refusing a gateway that is not on the external interface's link (host-gw needs
// one L2 segment): such a peer is reported and skipped.
func (nw *network) route(key string, dst netip.Prefix, gw netip.Addr, ext int) (netlink.Route, error) {
	rs, err := nw.b.h.RouteGet(net.IP(gw.AsSlice()))
	if err != nil || len(rs) == 0 || rs[0].Gw != nil || rs[0].LinkIndex != ext {
		if !nw.warned[key] {
			klog.Errorf("host-gw: peer %s at %s is not on the same link as %s; host-gw needs all nodes on one L2 segment",
				key, gw, nw.b.deps.ExtIface.Iface.Name)
			nw.warned[key] = true
		}
		return netlink.Route{}, fmt.Errorf("peer %s: gateway %s not on-link", key, gw)
	}
	delete(nw.warned, key)
	return netlink.Route{Dst: backend.PrefixToIPNet(dst), Gw: net.IP(gw.AsSlice()), LinkIndex: ext}, nil
}
