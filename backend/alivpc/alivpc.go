// Package alivpc is weft's ali-vpc backend: no encapsulation; each node's pod subnet is one custom entry in the
// Alibaba Cloud VPC route table(s), pointing at the node's instance, so pod addresses are plain VPC addresses.
//
// Every node publishes its instance id in the lease ({"InstanceID":"i-..."}). One node at a time, elected
// through the cluster's own store (coordination.Coordinator: an etcd election or a Kubernetes Lease), runs the route
// Controller: desired state is one entry per live ali-vpc lease, observed state is read from the route tables,
// writes are batched and serialised per table, and only entries carrying the cluster's owner tag are ever
// deleted. The leader publishes each node's status (routed, or the reason it is not) through
// the coordinator; each node reports not-ready until its own route is Available. Nothing lives only in
// memory: a new leader derives everything from the leases and the tables.
//
// Upstream flannel's removed ali-vpc backend had the same name and the AccessKeyID / AccessKeySecret fields (and
// ACCESS_KEY_ID / ACCESS_KEY_SECRET env); they are still accepted, but the instance's RAM role is preferred, and
// the secret is never logged.
package alivpc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/routetable"
	"github.com/weftnet/weft/internal/backoff"
	"github.com/weftnet/weft/internal/coordination"
	"github.com/weftnet/weft/subnet"
)

// Name is the backend's net-conf Backend.Type.
const Name = "ali-vpc"

func init() {
	backend.Register(Name, New)
	backend.RegisterConfigCheck(Name, func(raw json.RawMessage) error { _, err := parseConfig(raw); return err })
}

// Config is the ali-vpc part of net-conf.json's Backend object.
type Config struct {
	AccessKeyID     string
	AccessKeySecret string
	RouteTableIDs   []string // default: every route table of the VPC
	ClusterID       string   // owner tag of weft's entries: Description "weft:<ClusterID>" (default: the Network)
	Region          string   // default: metadata region-id
	VPCID           string   // default: metadata vpc-id
	Resync          string   // full reconcile period (default 60s)
	// QuotaRetry is how long a full route table is left alone before one create is tried again, in case the
	// quota was raised (default 1m: one call a minute is no retry storm).
	QuotaRetry string
	// RouteTableQuota is the custom entries allowed per table, for the quota metrics, used only when the Quota
	// Center does not answer (default 200).
	RouteTableQuota int
	// NonMasqueradeCIDRs are more destinations pods reach with their own address (the VPC CIDR always is),
	// e.g. peered VPCs or an on-premises range behind a VPN gateway.
	NonMasqueradeCIDRs []string
}

// leaseData is the lease's BackendData.
type leaseData struct {
	InstanceID string
}

type aliBackend struct {
	deps backend.Deps
	m    *routeMetrics // once per backend: RegisterNetwork is retried and must not register them again
}

// New builds the backend. It needs a coordinator: without a leader no node would write the routes.
func New(deps backend.Deps) (backend.Backend, error) {
	if deps.Coordinator == nil {
		return nil, fmt.Errorf("%s: needs leader election and route status through the cluster store, which this daemon does not provide", Name)
	}
	return &aliBackend{deps: deps, m: newRouteMetrics(deps.Registerer)}, nil
}

// Network is a node's ali-vpc network.
type Network struct {
	deps     backend.Deps
	sc       *subnet.Config
	lease    *subnet.Lease
	cfg      Config
	api      *aliyun.Client
	instance string
	vpc      string
	owner    string
	resync   time.Duration
	noMasq   []netip.Prefix

	mu     sync.Mutex
	status coordination.Status
	known  bool
	// cloudErr, on the leader, is why its last pass could not read the route tables ("" when it could).
	cloudErr string

	m *routeMetrics
}

// routeMetrics are exported by the leader only (reset when leadership ends).
type routeMetrics struct {
	entries  *prometheus.GaugeVec // table, kind=used|weft|other_weft|foreign
	quota    *prometheus.GaugeVec // table
	free     *prometheus.GaugeVec // table
	unrouted *prometheus.GaugeVec // reason
	leader   prometheus.Gauge
}

func newRouteMetrics(reg prometheus.Registerer) *routeMetrics {
	m := &routeMetrics{
		entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weft_route_table_entries",
			Help: "Custom entries in a VPC route table, by kind: used (all), weft (this cluster's), other_weft (other weft clusters'), foreign."}, []string{"table", "kind"}),
		quota: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weft_route_table_quota",
			Help: "Custom entries allowed in a VPC route table."}, []string{"table"}),
		free: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weft_route_table_free",
			Help: "Custom entries still free in a VPC route table (the node headroom)."}, []string{"table"}),
		unrouted: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weft_nodes_unrouted",
			Help: "Nodes whose VPC route is not Available, by reason."}, []string{"reason"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "weft_route_leader",
			Help: "1 on the node that currently writes the VPC routes."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.entries, m.quota, m.free, m.unrouted, m.leader} {
			reg.MustRegister(c) // once per backend, and a backend once per daemon: a duplicate is a bug
		}
	}
	return m
}

func (m *routeMetrics) set(res Result, quota int) {
	m.entries.Reset()
	m.quota.Reset()
	m.free.Reset()
	for _, t := range res.Tables {
		m.entries.WithLabelValues(t.ID, "used").Set(float64(t.Custom))
		m.entries.WithLabelValues(t.ID, "weft").Set(float64(t.Owned))
		m.entries.WithLabelValues(t.ID, "other_weft").Set(float64(t.OtherWeft))
		m.entries.WithLabelValues(t.ID, "foreign").Set(float64(t.Foreign()))
		m.quota.WithLabelValues(t.ID).Set(float64(quota))
		m.free.WithLabelValues(t.ID).Set(float64(max(quota-t.Custom, 0)))
	}
	m.unrouted.Reset()
	for _, r := range []string{ReasonPending, ReasonQuota, ReasonThrottle, ReasonConflict, ReasonAPI} {
		m.unrouted.WithLabelValues(r).Set(0)
	}
	for _, st := range res.Nodes {
		if !st.Routed {
			m.unrouted.WithLabelValues(st.Reason).Inc()
		}
	}
}

func (m *routeMetrics) clear() {
	m.entries.Reset()
	m.quota.Reset()
	m.free.Reset()
	m.unrouted.Reset()
	m.leader.Set(0)
}

func parseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &c); err != nil {
			return c, fmt.Errorf("Backend (ali-vpc): %w", err)
		}
	}
	if (c.AccessKeyID == "") != (c.AccessKeySecret == "") {
		return c, fmt.Errorf("Backend.AccessKeyID and Backend.AccessKeySecret: give both or neither (the RAM role is used when neither)")
	}
	for _, t := range c.RouteTableIDs {
		if !strings.HasPrefix(t, "vtb-") {
			return c, fmt.Errorf("Backend.RouteTableIDs: %q is not a route table id (vtb-...)", t)
		}
	}
	for _, r := range c.NonMasqueradeCIDRs {
		if _, err := netip.ParsePrefix(r); err != nil {
			return c, fmt.Errorf("Backend.NonMasqueradeCIDRs: %q is not a CIDR", r)
		}
	}
	if c.RouteTableQuota < 0 || c.RouteTableQuota > 1000 {
		return c, fmt.Errorf("Backend.RouteTableQuota: %d is not within 1..1000", c.RouteTableQuota)
	}
	for field, v := range map[string]string{"Resync": c.Resync, "QuotaRetry": c.QuotaRetry} {
		if v == "" {
			continue
		}
		if d, err := time.ParseDuration(v); err != nil || d < time.Second {
			return c, fmt.Errorf("Backend.%s: %q is not a duration of at least 1s", field, v)
		}
	}
	return c, nil
}

func (b *aliBackend) RegisterNetwork(ctx context.Context, sc *subnet.Config) (backend.Network, error) {
	cfg, err := parseConfig(sc.Backend)
	if err != nil {
		return nil, err
	}
	var static *aliyun.Credentials
	if cfg.AccessKeyID != "" {
		static = &aliyun.Credentials{AccessKeyID: cfg.AccessKeyID, AccessKeySecret: cfg.AccessKeySecret}
	}
	api, id, err := aliyun.NewFromMetadata(ctx, aliyun.Options{Region: cfg.Region, VPCID: cfg.VPCID, Static: static,
		Need: aliyun.NeedInstance | aliyun.NeedVPC | aliyun.NeedVPCCIDR, Registerer: b.deps.Registerer, Getenv: os.Getenv})
	if err != nil {
		return nil, fmt.Errorf("ali-vpc: %w", err)
	}
	instance, region, vpc := id.InstanceID, id.Region, id.VPCID
	noMasq := noMasquerade(id.VPCCIDR, cfg.NonMasqueradeCIDRs)
	data, _ := json.Marshal(leaseData{InstanceID: instance})
	ei := b.deps.ExtIface
	attrs := &subnet.LeaseAttrs{BackendType: Name, BackendData: data}
	if sc.EnableIPv4 {
		attrs.PublicIP = ei.ExtAddr
	}
	if sc.EnableIPv6 {
		attrs.PublicIPv6, attrs.BackendV6Data = ei.ExtV6Addr, data
	}
	l, err := b.deps.SubnetManager.AcquireLease(ctx, attrs)
	if err != nil {
		return nil, fmt.Errorf("acquire lease: %w", err)
	}
	owner := cfg.ClusterID
	if owner == "" {
		owner = sc.Network.String()
		if !sc.Network.IsValid() {
			owner = sc.IPv6Network.String()
		}
	}
	resync := 60 * time.Second
	if cfg.Resync != "" {
		resync, _ = time.ParseDuration(cfg.Resync)
	}
	klog.Infof("ali-vpc: instance %s in %s (%s) / %s (%s), routes owned as %q", instance, region, id.RegionFrom, vpc, id.VPCFrom,
		routetable.OwnerTag(owner))
	if cfg.RouteTableQuota == 0 {
		cfg.RouteTableQuota = 200
	}
	return &Network{deps: b.deps, sc: sc, lease: l, cfg: cfg, api: api, instance: instance, vpc: vpc, owner: routetable.OwnerTag(owner),
		resync: resync, noMasq: noMasq, m: b.m}, nil
}

// Outputs are flannel's per-node-subnet outputs at the full MTU (no encapsulation), with the VPC (and any
// NonMasqueradeCIDRs) reached unmasqueraded; the route leader, not the daemon, reports the node's condition.
func (n *Network) Outputs() backend.Outputs {
	o := backend.SubnetOutputs(n.sc, n.lease, n.deps.ExtIface.Iface.MTU)
	o.Traffic.NoMasquerade = n.noMasq
	o.PublishesNodeStatus = true
	return o
}

var _ backend.Readiness = (*Network)(nil)

// Ready reports whether this node's route is Available (the daemon's /readyz and node condition follow it).
func (n *Network) Ready() (bool, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cloudErr != "" {
		return false, ReasonAPI + ": this node leads route control and cannot read the VPC route tables (the routes in place are kept): " + n.cloudErr
	}
	if !n.known {
		return false, "waiting for the route controller to report this node's route"
	}
	if !n.status.Routed {
		return false, "VPC route not available: " + n.status.Reason
	}
	return true, ""
}

// Run watches this node's route status and, while elected, runs the route controller.
func (n *Network) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); n.watchOwnStatus(ctx) }()
	go func() { defer wg.Done(); n.lead(ctx) }()
	wg.Wait()
}

func (n *Network) watchOwnStatus(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		st, ok, err := n.deps.Coordinator.Status(ctx, n.lease)
		if err == nil && ok {
			n.mu.Lock()
			n.status, n.known = st, true
			n.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Network) lead(ctx context.Context) {
	id := n.instance + "/" + n.lease.Node()
	b := backoff.Backoff{Min: time.Second, Max: 30 * time.Second}
	for ctx.Err() == nil {
		lctx, err := n.deps.Coordinator.Lead(ctx, "ali-vpc-routes", id)
		if err != nil {
			if ctx.Err() == nil {
				d := b.Next()
				klog.Errorf("ali-vpc: leader election: %v (retrying in %s)", err, d.Round(time.Millisecond))
				_ = backoff.Sleep(ctx, d)
			}
			continue
		}
		b.Reset()
		klog.Infof("ali-vpc: leading route control for %s", n.vpc)
		n.m.leader.Set(1)
		n.control(lctx)
		n.setCloudErr(nil)
		n.m.clear()
		klog.Infof("ali-vpc: no longer leading route control")
	}
}

// control runs the controller until leadership ends: on every lease change (debounced) and every resync.
func (n *Network) control(ctx context.Context) {
	quotaRetry := time.Minute
	if n.cfg.QuotaRetry != "" {
		quotaRetry, _ = time.ParseDuration(n.cfg.QuotaRetry)
	}
	c := &Controller{API: n.api, VPC: n.vpc, Tables: n.cfg.RouteTableIDs, Owner: n.owner, QuotaRetry: quotaRetry}
	store := n.deps.Coordinator
	quotas := &quotaSource{api: n.api, configured: n.cfg.RouteTableQuota, refresh: 5 * time.Minute}
	events := make(chan []subnet.Event, 64)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = n.deps.SubnetManager.WatchLeases(wctx, events) }()
	leases := backend.Peers{} // every ali-vpc node, this one included, by node
	published := map[string]coordination.Status{}
	tick := time.NewTicker(n.resync)
	defer tick.Stop()
	dirty := false
	pass := func() {
		var wants []Want
		for k, l := range leases {
			var d leaseData
			if json.Unmarshal(l.Attrs.BackendData, &d) != nil || d.InstanceID == "" {
				continue
			}
			for _, p := range []netip.Prefix{l.Subnet, l.IPv6Subnet} {
				if p.IsValid() {
					wants = append(wants, Want{Node: k, Dst: p.Masked(), Instance: d.InstanceID})
				}
			}
		}
		start := time.Now()
		res, err := c.Reconcile(ctx, wants)
		if n.deps.Hooks != nil {
			n.deps.Hooks.Reconciled(Name, time.Since(start).Seconds(), err)
		}
		if ctx.Err() != nil {
			return // leadership or the daemon ended mid-pass: what it saw says nothing about the cloud
		}
		n.setCloudErr(res.ReadErr)
		if res.ReadErr != nil {
			klog.Errorf("ali-vpc: reconcile: %s: the route tables cannot be read, the routes in place are kept and the next pass retries: %v", ReasonAPI, err)
		} else if err != nil {
			klog.Errorf("ali-vpc: reconcile: %v", err)
		}
		quota, _ := quotas.get(ctx, time.Now())
		n.m.set(res, quota)
		for k, l := range leases {
			st, ok := res.Nodes[k]
			if !ok {
				continue
			}
			rs := coordination.Status{Routed: st.Routed, Reason: st.Reason}
			if st.Unknown {
				// The table was not read: the last word on the node stands (this leader's, or its predecessor's).
				if _, ok := published[k]; ok {
					continue
				}
				if prev, ok, err := store.Status(ctx, &l); err == nil && ok {
					published[k] = prev
					continue
				}
			}
			if published[k] == rs {
				continue
			}
			if err := store.Publish(ctx, &l, rs); err == nil {
				published[k] = rs
			} else if ctx.Err() == nil {
				klog.Warningf("ali-vpc: %v", err)
			}
		}
	}
	debounce := time.NewTimer(time.Hour)
	defer debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case batch := <-events:
			for _, ev := range batch {
				k := ev.Lease.Node()
				before, had := leases[k]
				leases.Apply(Name, ev, nil, isAliVPC)
				if ev.Type != subnet.EventRemoved || !had || before.Key() != ev.Lease.Key() {
					continue
				}
				// The next incarnation of this node (or the next holder of the subnet) must not read this status.
				delete(published, k)
				if err := store.Forget(ctx, &ev.Lease); err != nil && ctx.Err() == nil {
					klog.Warningf("ali-vpc: %v", err)
				}
			}
			if !dirty {
				dirty = true
				debounce.Reset(200 * time.Millisecond) // gather a burst of joins into one pass
			}
		case <-debounce.C:
			dirty = false
			pass()
		case <-tick.C:
			pass()
		}
	}
}

// setCloudErr records why the leader's last pass could not read the route tables (nil: it could).
func (n *Network) setCloudErr(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cloudErr = ""
	if err != nil {
		n.cloudErr = err.Error()
	}
}

func isAliVPC(l subnet.Lease) bool { return l.Attrs.BackendType == Name }

// noMasquerade is the VPC's CIDR (pods keep their source address towards the VPC) and the configured extra
// ranges (validated in parseConfig).
func noMasquerade(vpc netip.Prefix, extra []string) []netip.Prefix {
	out := []netip.Prefix{vpc.Masked()}
	for _, r := range extra {
		out = append(out, netip.MustParsePrefix(r).Masked())
	}
	return out
}
