// Package daemon is weftd's wiring: it turns Options into a subnet manager (etcd or Kubernetes), the external
// interface, a backend and the masquerade/forward rules, writes subnet.env, and then keeps everything converged
// until its context ends.
//
// Start-up is a sequence of steps, each retried with jittered backoff while /readyz answers 503 with the reason
// (an unreachable store, a missing podCIDR, ...). Only once the backend has set the node up, the rules are in place
// and subnet.env is written does /readyz turn 200. Stopping (SIGTERM) cancels the context: devices, routes, rules
// and the lease stay where they are, so pods keep their traffic while weftd restarts; stale state is cleaned up by
// the next start's reconcile instead.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/internal/extiface"
	"github.com/weftnet/weft/internal/metrics"
	"github.com/weftnet/weft/internal/version"
	"github.com/weftnet/weft/subnet"

	// The backends weftd offers.
	_ "github.com/weftnet/weft/backend/alivpc"
	_ "github.com/weftnet/weft/backend/hostgw"
	_ "github.com/weftnet/weft/backend/vxlan"
)

// Run runs weftd until ctx ends. It returns nil after a clean stop, or the error that makes the daemon unable to
// go on (bad flags, a malformed Kubernetes-mode config file, no usable interface).
func Run(ctx context.Context, o *Options, fs *flag.FlagSet) error {
	start := time.Now()
	klog.Infof("weftd %s (%s) starting", version.Version, version.GoVersion)
	klog.Infof("effective configuration: %s", o.Redacted(fs))

	mode := "etcd"
	if o.KubeSubnetMgr {
		mode = "kube"
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, mode)
	ready := &readiness{reason: "starting", onSet: m.SetReady}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var healthErr <-chan error
	if o.HealthzPort != 0 {
		var err error
		healthErr, err = serveHealth(ctx, o.HealthzIP, o.HealthzPort, healthHandler(ready, reg))
		if err != nil {
			return fmt.Errorf("--healthz-ip/--healthz-port: %w", err)
		}
	}

	sm, err := newSubnetManager(ctx, o)
	if err != nil {
		return err
	}
	if km, ok := sm.(interface {
		NodePublicIPs(context.Context) (string, string, error)
	}); ok {
		// node-public-ip / node-public-ipv6 annotations replace --public-ip / --public-ipv6, as upstream.
		if err := retry(ctx, ready, "read node public IP annotations", func() error {
			v4, v6, err := km.NodePublicIPs(ctx)
			if v4 != "" {
				o.PublicIP = v4
			}
			if v6 != "" {
				o.PublicIPv6 = v6
			}
			return err
		}); err != nil {
			return ignoreCancel(err)
		}
	}
	sm = &countingManager{Manager: sm, m: m}

	var cfg *subnet.Config
	if err := retry(ctx, ready, "get network config from "+sm.Name(), func() (err error) {
		cfg, err = sm.GetNetworkConfig(ctx)
		return err
	}); err != nil {
		return ignoreCancel(err)
	}
	if cfg.BackendDefaulted {
		klog.Warning("Backend.Type is not set: using vxlan (upstream flanneld would pick udp despite documenting vxlan)")
	}

	ei, err := extiface.Lookup(extiface.Options{
		Ifaces: o.Iface, IfaceRegex: o.IfaceRegex, CanReach: o.IfaceCanReach,
		PublicIP: o.PublicIP, PublicIPv6: o.PublicIPv6,
		EnableIPv4: cfg.EnableIPv4, EnableIPv6: cfg.EnableIPv6,
	})
	if err != nil {
		return fmt.Errorf("external interface: %w", err)
	}
	klog.Infof("using interface %s (IPv4 %v, IPv6 %v; public %v %v)", ei.Iface.Name, ei.IfaceAddr, ei.IfaceV6, ei.ExtAddr, ei.ExtV6Addr)

	be, err := backend.New(cfg.BackendType, backend.Deps{SubnetManager: sm, ExtIface: ei, Hooks: m, Registerer: reg})
	if err != nil {
		return err
	}
	var nw backend.Network
	if err := retry(ctx, ready, "register "+cfg.BackendType+" network", func() (err error) {
		nw, err = be.RegisterNetwork(ctx, cfg)
		return err
	}); err != nil {
		return ignoreCancel(err)
	}
	lease := nw.Lease()
	m.LeaseAcquired(sm.Name())
	klog.Infof("lease acquired: %s (IPv4 %v, IPv6 %v)", lease.Key(), lease.Subnet, lease.IPv6Subnet)

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	rules, err := newRules(o, cfg, lease, nw)
	if err != nil {
		return err
	}
	if err := retry(ctx, ready, "set up masquerade and forward rules", func() error { return rules.Ensure(ctx) }); err != nil {
		return ignoreCancel(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); rules.Run(ctx, time.Duration(o.IPTablesResync)*time.Second) }()

	if o.BlackholeRoute {
		if err := addBlackholeRoutes(lease); err != nil {
			klog.Errorf("--ip-blackhole-route: %v", err)
		}
	}

	env := subnet.Env{
		Network: cfg.Network, Subnet: lease.Subnet,
		IPv6Network: cfg.IPv6Network, IPv6Subnet: lease.IPv6Subnet,
		EnableIPv4: cfg.EnableIPv4, EnableIPv6: cfg.EnableIPv6,
		MTU: nw.MTU(), IPMasq: o.IPMasq,
	}
	if err := retry(ctx, ready, "write "+o.SubnetFile, func() error { return subnet.WriteEnvFile(o.SubnetFile, env) }); err != nil {
		return ignoreCancel(err)
	}
	klog.Infof("wrote %s in %s", o.SubnetFile, time.Since(start).Round(time.Millisecond))

	wg.Add(1)
	go func() { defer wg.Done(); nw.Run(ctx) }()

	// Backends whose routes are made elsewhere (ali-vpc: by the cloud) say when this node is really reachable;
	// only then is the lease completed (kube: NetworkUnavailable=False) and /readyz 200.
	if r, ok := nw.(interface{ Ready() (bool, string) }); ok {
		if err := waitReady(ctx, ready, r); err != nil {
			return ignoreCancel(err)
		}
	}
	if err := retry(ctx, ready, "complete lease", func() error { return sm.CompleteLease(ctx, lease) }); err != nil {
		return ignoreCancel(err)
	}
	ready.set(true, "")
	if r, ok := nw.(interface{ Ready() (bool, string) }); ok {
		wg.Add(1)
		go func() { defer wg.Done(); followReady(ctx, ready, r) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := keepLease(ctx, sm, lease, o.RenewMarginDuration()); err != nil && ctx.Err() == nil {
			klog.Errorf("%v: exiting so that the supervisor restarts weftd with a fresh setup", err)
			cancel()
			os.Exit(1)
		}
	}()

	select {
	case <-ctx.Done():
	case err := <-healthErr:
		if err != nil {
			return fmt.Errorf("health server: %w", err)
		}
	}
	klog.Info("stopping; devices, routes, rules and the lease are left in place")
	return nil
}

// waitReady holds start-up until the backend reports the node reachable, with its reason in /readyz meanwhile.
func waitReady(ctx context.Context, ready *readiness, r interface{ Ready() (bool, string) }) error {
	for {
		ok, why := r.Ready()
		if ok {
			return nil
		}
		ready.set(false, why)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// followReady keeps /readyz in step with the backend after start-up (a route can be lost later).
func followReady(ctx context.Context, ready *readiness, r interface{ Ready() (bool, string) }) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ok, why := r.Ready()
			ready.set(ok, why)
		}
	}
}

func ignoreCancel(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// keepLease renews the lease before it expires (etcd mode) and re-acquires it if it is revoked or deleted. It
// returns an error only when the lease cannot be kept on the same subnet, which needs a fresh start.
func keepLease(ctx context.Context, sm subnet.Manager, l *subnet.Lease, margin time.Duration) error {
	events := make(chan []subnet.Event, 16)
	watchErr := make(chan error, 1)
	go func() { watchErr <- sm.WatchLease(ctx, l, events) }()
	for {
		var renew <-chan time.Time
		if !l.Expiration.IsZero() {
			d := time.Until(l.Expiration) - margin
			if d < 0 {
				d = 0
			}
			renew = time.After(d)
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-watchErr:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watching own lease %s: %w", l.Key(), err)
		case <-renew:
			if err := sm.RenewLease(ctx, l); err != nil {
				klog.Errorf("renew lease %s: %v (retrying in 1m)", l.Key(), err)
				l.Expiration = time.Now().Add(margin + time.Minute)
				continue
			}
			klog.Infof("lease %s renewed, expires %s", l.Key(), l.Expiration.Format(time.RFC3339))
		case evs := <-events:
			for _, ev := range evs {
				if ev.Type != subnet.EventRemoved {
					continue
				}
				klog.Warningf("lease %s was revoked; re-acquiring it", l.Key())
				attrs := l.Attrs
				var nl *subnet.Lease
				b := backoff{min: 500 * time.Millisecond, max: 30 * time.Second}
				for {
					var err error
					if nl, err = sm.AcquireLease(ctx, &attrs); err == nil {
						break
					}
					if ctx.Err() != nil {
						return nil
					}
					klog.Errorf("re-acquire lease: %v", err)
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(b.next()):
					}
				}
				if nl.Subnet != l.Subnet || nl.IPv6Subnet != l.IPv6Subnet {
					return fmt.Errorf("lease re-acquired on %s instead of %s", nl.Key(), l.Key())
				}
				l.Expiration = nl.Expiration
				klog.Infof("lease %s re-acquired", l.Key())
			}
		}
	}
}

// addBlackholeRoutes routes this node's own subnets to a blackhole, so traffic to unassigned pod addresses is
// dropped here instead of leaving by the default route (--ip-blackhole-route).
func addBlackholeRoutes(l *subnet.Lease) error {
	var errs []error
	for _, p := range []netip.Prefix{l.Subnet, l.IPv6Subnet} {
		if !p.IsValid() {
			continue
		}
		r := &netlink.Route{Dst: prefixToIPNet(p), Type: 6 /* RTN_BLACKHOLE */}
		if err := netlink.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("blackhole route %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	p = p.Masked()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// countingManager counts the lease events the backend receives.
type countingManager struct {
	subnet.Manager
	m *metrics.Daemon
}

func (c *countingManager) WatchLeases(ctx context.Context, out chan<- []subnet.Event) error {
	in := make(chan []subnet.Event)
	errc := make(chan error, 1)
	go func() { errc <- c.Manager.WatchLeases(ctx, in) }()
	for {
		select {
		case err := <-errc:
			return err
		case evs := <-in:
			for _, ev := range evs {
				c.m.LeaseEvent(ev.Type.String())
			}
			select {
			case out <- evs:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// The optional capabilities of the wrapped manager pass through the counting wrapper.

func (c *countingManager) Lead(ctx context.Context, name, id string) (context.Context, error) {
	if el, ok := c.Manager.(subnet.LeaderElector); ok {
		return el.Lead(ctx, name, id)
	}
	return nil, fmt.Errorf("the %s subnet manager cannot elect a leader", c.Manager.Name())
}

func (c *countingManager) PublishRouteStatus(ctx context.Context, l *subnet.Lease, st subnet.RouteStatus) error {
	if s, ok := c.Manager.(subnet.RouteStatusStore); ok {
		return s.PublishRouteStatus(ctx, l, st)
	}
	return fmt.Errorf("the %s subnet manager cannot store route status", c.Manager.Name())
}

func (c *countingManager) ForgetRouteStatus(ctx context.Context, l *subnet.Lease) error {
	if s, ok := c.Manager.(subnet.RouteStatusStore); ok {
		return s.ForgetRouteStatus(ctx, l)
	}
	return fmt.Errorf("the %s subnet manager cannot store route status", c.Manager.Name())
}

func (c *countingManager) RouteStatus(ctx context.Context, l *subnet.Lease) (subnet.RouteStatus, bool, error) {
	if s, ok := c.Manager.(subnet.RouteStatusStore); ok {
		return s.RouteStatus(ctx, l)
	}
	return subnet.RouteStatus{}, false, fmt.Errorf("the %s subnet manager cannot store route status", c.Manager.Name())
}
