// Package hostgw is weft's host-gw backend, as upstream flanneld's: no encapsulation; every peer's subnet is
// routed via the peer's public address on the external interface, so all nodes must share one L2 segment.
// Desired (desired.go) computes exactly one route per live on-link peer and family, purely from the peer set; the
// reconcile applies it through backend.SyncRoutes, deleting routes of vanished peers. Only gateway routes on the
// external interface into the cluster network are considered weft's.
package hostgw

import (
	"context"
	"errors"
	"fmt"
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

func (nw *network) Run(ctx context.Context) {
	backend.RunLoop(ctx, Name, nw.b.deps, nw.lease, func(l subnet.Lease) bool {
		return l.Attrs.BackendType == Name
	}, nw.reconcile)
}

// reconcile plans each enabled family's routes from the peers and applies them. An off-link peer is an error of
// every reconcile, logged once until it is routable again (or gone).
func (nw *network) reconcile(peers backend.Peers) error {
	ext := nw.b.deps.ExtIface.Iface.Index
	var errs []error
	offLink := map[string]bool{}
	plan := func(family int, cluster netip.Prefix) {
		self := Self{Family: family, Ext: ext, Cluster: cluster,
			OnLink: backend.OnLink(nw.b.h, ext, backend.PublicAddrs(peers, family))}
		st := Desired(peers, self)
		for _, o := range st.OffLink {
			id := o.Peer + " " + o.Gateway.String()
			offLink[id] = true
			if !nw.warned[id] {
				klog.Errorf("host-gw: peer %s at %s is not on the same link as %s; host-gw needs all nodes on one L2 segment",
					o.Peer, o.Gateway, nw.b.deps.ExtIface.Iface.Name)
			}
			errs = append(errs, fmt.Errorf("peer %s: gateway %s not on-link", o.Peer, o.Gateway))
		}
		errs = append(errs, backend.SyncRoutes(nw.b.h, family, st.Routes, self.Owns))
	}
	if nw.sc.EnableIPv4 {
		plan(netlink.FAMILY_V4, nw.sc.Network)
	}
	if nw.sc.EnableIPv6 {
		plan(netlink.FAMILY_V6, nw.sc.IPv6Network)
	}
	nw.warned = offLink
	return errors.Join(errs...)
}
