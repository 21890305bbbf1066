// Package daemon is weftd's wiring: it turns Options into a subnet manager (etcd or Kubernetes), the external
// interface, a backend and the masquerade/forward rules, writes subnet.env, and then keeps everything converged
// until its context ends.
//
// Start-up is a sequence of steps, each retried with jittered backoff while /readyz answers 503 with the reason
// (an unreachable store, a missing podCIDR, ...). Only once the backend has set the node up, the rules are in place
// and subnet.env is written does /readyz turn 200; after that it answers 503 naming the store while the store
// does not answer a probe (routes stay, traffic flows, and it turns 200 again on its own). Stopping (SIGTERM) cancels the context: devices, routes, rules
// and the lease stay where they are, so pods keep their traffic while weftd restarts; stale state is cleaned up by
// the next start's reconcile instead.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/internal/backoff"
	"github.com/weftnet/weft/internal/extiface"
	"github.com/weftnet/weft/internal/metrics"
	"github.com/weftnet/weft/internal/policy/cniwait"
	"github.com/weftnet/weft/internal/version"
	"github.com/weftnet/weft/subnet"

	// The backends weftd offers.
	_ "github.com/weftnet/weft/backend/alivpc"
	"github.com/weftnet/weft/backend/eni"
	_ "github.com/weftnet/weft/backend/hostgw"
	_ "github.com/weftnet/weft/backend/vxlan"
)

// Run runs weftd until ctx ends. It returns nil after a clean stop, or the error that makes the daemon unable to
// go on (bad flags, a malformed Kubernetes-mode config file, no usable interface, a lease that cannot be kept).
//
// The sequence: the store (subnet manager and coordinator), the network config, the external interface, the
// backend's RegisterNetwork; then the daemon acts on the backend's Outputs: rules, blackhole routes, subnet.env,
// the backend's Run loop, readiness, completing and keeping the lease. A backend leaves out what it has not.
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

	cs, err := newStore(ctx, o)
	if err != nil {
		return err
	}
	if err := applyNodeAddresses(ctx, ready, cs.manager, o); err != nil {
		return ignoreCancel(err)
	}
	sm := &countingManager{Manager: cs.manager, m: m}

	var cfg *subnet.Config
	if err := retry(ctx, ready, "get network config from "+sm.Name(), func() (err error) {
		cfg, err = sm.GetNetworkConfig(ctx)
		return err
	}); err != nil {
		return ignoreCancel(err)
	}
	if err := checkMode(o, cfg); err != nil {
		return err
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

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	pol, err := newPolicy(ctx, &wg, reg, o, cfg, cs.nodeName)
	if err != nil {
		return err
	}
	deps := backend.Deps{SubnetManager: sm, ExtIface: ei, Hooks: m, Registerer: reg,
		Coordinator: cs.coord, Kube: cs.kube, NodeName: cs.nodeName, SetNodeNetworkUnavailable: o.SetNodeNetUnav}
	if pol != nil {
		deps.Policy = pol // an untyped nil otherwise: a backend tests Policy != nil
	}
	be, err := backend.New(cfg.BackendType, deps)
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
	out := nw.Outputs()
	if out.Lease != nil {
		m.LeaseAcquired(sm.Name())
		klog.Infof("lease acquired: %s (IPv4 %v, IPv6 %v)", out.Lease.Key(), out.Lease.Subnet, out.Lease.IPv6Subnet)
	} else {
		klog.Infof("%s keeps no per-node subnet lease", cfg.BackendType)
	}

	fatal := make(chan error, 1) // a background job that cannot go on

	rules, err := newRules(o, cfg, out.Traffic)
	if err != nil {
		return err
	}
	if err := retry(ctx, ready, "set up masquerade and forward rules", func() error { return rules.Ensure(ctx) }); err != nil {
		return ignoreCancel(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); rules.Run(ctx, time.Duration(o.IPTablesResync)*time.Second) }()

	if o.BlackholeRoute && out.Lease != nil {
		if err := addBlackholeRoutes(nil, out.Lease); err != nil {
			klog.Errorf("--ip-blackhole-route: %v", err)
		}
	}

	// NetworkPolicy before subnet.env (which pods need to be made at all), the backend and readiness: no pod of
	// this node starts unprotected.
	if pol != nil {
		if err := servePolicy(ctx, &wg, ready, pol, o, cs.kube); err != nil {
			return ignoreCancel(err)
		}
	}

	if out.Env != nil {
		env := *out.Env
		env.IPMasq = o.IPMasq
		if err := retry(ctx, ready, "write "+o.SubnetFile, func() error { return subnet.WriteEnvFile(o.SubnetFile, env) }); err != nil {
			return ignoreCancel(err)
		}
		if pol != nil {
			// The socket is newer than subnet.env while weftd runs the engine (cniwait.Active).
			if err := cniwait.Touch(cniwait.SocketPath(o.SubnetFile)); err != nil {
				klog.Warningf("network policy: %v", err)
			}
		}
		klog.Infof("wrote %s in %s", o.SubnetFile, time.Since(start).Round(time.Millisecond))
	}

	wg.Add(1)
	go func() { defer wg.Done(); nw.Run(ctx) }()

	// A backend whose routes are made elsewhere (ali-vpc: by the cloud) says when this node is really reachable;
	// only then is the lease completed (kube: NetworkUnavailable=False) and /readyz 200.
	r, hasReadiness := nw.(backend.Readiness)
	if hasReadiness {
		if err := waitReady(ctx, ready, r); err != nil {
			return ignoreCancel(err)
		}
	}
	if out.Lease != nil && !out.PublishesNodeStatus {
		if err := retry(ctx, ready, "complete lease", func() error { return sm.CompleteLease(ctx, out.Lease) }); err != nil {
			return ignoreCancel(err)
		}
	}
	ready.set(true, "")
	klog.Infof("node set up in %s", time.Since(start).Round(time.Millisecond))
	if hasReadiness {
		wg.Add(1)
		go func() { defer wg.Done(); followReady(ctx, ready, r) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		followStore(ctx, ready, sm.Name(), cs.probe, storeProbeEvery, storeProbeTimeout)
	}()
	if out.Lease != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := keepLease(ctx, sm, out.Lease, o.RenewMarginDuration()); err != nil {
				fatal <- err
			}
		}()
	}

	select {
	case <-ctx.Done():
	case err := <-healthErr:
		if err != nil {
			return fmt.Errorf("health server: %w", err)
		}
	case err := <-fatal:
		// The supervisor (systemd, the DaemonSet) restarts weftd, whose fresh start sets the node up again.
		return err
	}
	klog.Info("stopping; devices, routes, rules and the lease are left in place")
	return nil
}

// kubeOnly are the backends that need Kubernetes mode: eni reads pods from the API server, which etcd mode has
// not. (The backend's constructor says the same, but only after the external interface was looked up, which such
// a backend does not use: an operator must hear about the mode, not about an interface.)
var kubeOnly = map[string]bool{eni.Name: true}

// checkMode refuses, as soon as the network config is read, a backend the daemon's mode cannot run.
func checkMode(o *Options, cfg *subnet.Config) error {
	if kubeOnly[cfg.BackendType] && !o.KubeSubnetMgr {
		return fmt.Errorf("Backend.Type %q needs Kubernetes mode (--kube-subnet-mgr): pods and their addresses are read from the Kubernetes API, which etcd mode does not have", cfg.BackendType)
	}
	return nil
}

// applyNodeAddresses lets addresses set on the node object (kube: node-public-ip annotations) replace
// --public-ip / --public-ipv6, as upstream.
func applyNodeAddresses(ctx context.Context, ready *readiness, sm subnet.Manager, o *Options) error {
	na, ok := sm.(subnet.NodeAddresses)
	if !ok {
		return nil
	}
	return retry(ctx, ready, "read node public IP annotations", func() error {
		v4, v6, err := na.NodePublicIPs(ctx)
		if v4 != "" {
			o.PublicIP = v4
		}
		if v6 != "" {
			o.PublicIPv6 = v6
		}
		return err
	})
}

// waitReady holds start-up until the backend reports the node reachable, with its reason in /readyz meanwhile.
func waitReady(ctx context.Context, ready *readiness, r backend.Readiness) error {
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
func followReady(ctx context.Context, ready *readiness, r backend.Readiness) {
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
				b := backoff.Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second}
				for {
					var err error
					if nl, err = sm.AcquireLease(ctx, &attrs); err == nil {
						break
					}
					if ctx.Err() != nil {
						return nil
					}
					klog.Errorf("re-acquire lease: %v", err)
					if b.Wait(ctx) != nil {
						return nil
					}
				}
				if nl.Subnet != l.Subnet || nl.IPv6Subnet != l.IPv6Subnet {
					return fmt.Errorf("lease re-acquired on %s instead of %s: exiting so that a fresh start sets the node up on the new subnet", nl.Key(), l.Key())
				}
				l.Expiration = nl.Expiration
				klog.Infof("lease %s re-acquired", l.Key())
			}
		}
	}
}

// addBlackholeRoutes routes this node's own subnets to a blackhole, so traffic to unassigned pod addresses is
// dropped here instead of leaving by the default route (--ip-blackhole-route). h nil means the current namespace.
func addBlackholeRoutes(h *netlink.Handle, l *subnet.Lease) error {
	if h == nil {
		var err error
		if h, err = netlink.NewHandle(); err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		defer h.Close()
	}
	var errs []error
	for _, p := range []netip.Prefix{l.Subnet, l.IPv6Subnet} {
		if !p.IsValid() {
			continue
		}
		r := &netlink.Route{Dst: backend.PrefixToIPNet(p), Type: unix.RTN_BLACKHOLE}
		if err := h.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("blackhole route %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// countingManager counts the lease events the backend receives. It adds nothing else: capabilities of the
// store live in the coordinator, not behind assertions on the manager.
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
