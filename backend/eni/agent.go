package eni

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/internal/backoff"
	"github.com/weftnet/weft/internal/eni/checkpoint"
	"github.com/weftnet/weft/internal/eni/datapath"
	"github.com/weftnet/weft/internal/eni/pool"
	"github.com/weftnet/weft/internal/eni/reconcile"
)

// Cloud is the part of the ECS API the agent uses; cloud/aliyun's Client implements it.
type Cloud interface {
	Instance(ctx context.Context, id string) (aliyun.Instance, error)
	InstanceTypes(ctx context.Context, ids ...string) ([]aliyun.InstanceType, error)
	ENIs(ctx context.Context, f aliyun.ENIFilter) ([]aliyun.ENI, error)
	CreateENI(ctx context.Context, n aliyun.NewENI) (aliyun.ENI, error)
	AttachENI(ctx context.Context, instanceID, eniID string) error
	DeleteENI(ctx context.Context, eniID string) error
	AssignIPs(ctx context.Context, eniID string, n int) ([]netip.Addr, error)
	UnassignIPs(ctx context.Context, eniID string, ips []netip.Addr) error
	VSwitches(ctx context.Context, vpcID string) ([]aliyun.VSwitch, error)
}

// Meta reads the instance metadata (hints only: the API is the truth).
type Meta interface {
	Get(ctx context.Context, path string) (string, error)
}

// Host is the host side of the datapath; datapath.Host implements it.
type Host interface {
	LinkByMAC(mac net.HardwareAddr) (netlink.Link, error)
	EnsureENI(e datapath.ENILink) (int, error)
	Observe() (datapath.Observed, error)
	SyncRules(want []datapath.PodRule) error
}

// The tags weft puts on every ENI it creates. Only ENIs carrying TagCluster with this cluster's id are ever
// attached, changed or deleted by weft; others are never touched.
const (
	TagCluster   = "weft.io/cluster"
	TagNode      = "weft.io/node"
	TagInstance  = "weft.io/instance"
	TagCreatedBy = "weft.io/created-by"
)

type agentDeps struct {
	cfg      Config
	deps     backend.Deps
	cloud    Cloud
	meta     Meta
	identity aliyun.Identity
	m        *metrics
	// Tests replace these.
	host   Host
	status NodeStatus
	events Events
	pods   Pods
	nodes  Nodes
	clock  pool.Clock
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// eniState is what the agent knows of one of its ENIs beyond the pool's view.
type eniState struct {
	aliyun.ENI
	gateway netip.Addr
	cidr    netip.Prefix
	ifindex int
	table   int
	usable  bool
	why     string // why not usable
	// served: usable once in this process; gone: it left the host (detached, attached elsewhere, its link
	// vanished); lost: its pods were reported as having lost their network (until it is usable again).
	served, gone, lost bool
}

// Network is a node's eni network: the agent, the CNI handler and the garbage collector.
type Network struct {
	d        agentDeps
	cfg      Config
	instance string
	zone     string
	itype    string
	limits   pool.Limits
	store    checkpoint.Store
	pool     *pool.Pool
	kick     chan struct{}

	mu             sync.Mutex
	enis           map[string]*eniState // by ENI id
	vswitches      map[string]aliyun.VSwitch
	exhausted      map[string]time.Time // vSwitch id -> until when it is left out of selection
	cloudErr       string               // the last failed cloud call, "" after a success
	cloudFail      int                  // consecutive failures
	state          string               // a condition the node is in (VSwitchExhausted, ENILimit), "" for none
	stateMsg       string
	socketErr      string // why the CNI socket cannot be served, "" while it is
	published      string // readiness last written to the node
	publishedState string // state last written to the node's WeftENIExhausted condition
	// eniLimitUntil: the instance refused another ENI (foreign ENIs take slots); no create is tried before then.
	eniLimitUntil time.Time
}

// exhaustedFor is how long a vSwitch that ran out of addresses is left out of selection before it is tried again.
const exhaustedFor = 5 * time.Minute

func startAgent(ctx context.Context, d agentDeps) (*Network, error) {
	if d.clock == nil {
		d.clock = realClock{}
	}
	cfg := d.cfg
	n := &Network{d: d, cfg: cfg, instance: d.identity.InstanceID, store: checkpoint.Store{Path: cfg.Checkpoint},
		kick: make(chan struct{}, 1), enis: map[string]*eniState{}, vswitches: map[string]aliyun.VSwitch{},
		exhausted: map[string]time.Time{}}
	if d.host == nil {
		d.host = datapath.Host{Rules: n.rules()}
		n.d.host = d.host
	}
	// The API is the truth about the instance (its type sets the limits); the metadata only a hint, logged
	// when it disagrees.
	in, err := d.cloud.Instance(ctx, n.instance)
	n.cloudResult("DescribeInstances", err)
	if err != nil {
		return nil, fmt.Errorf("eni: %w", err)
	}
	n.zone, n.itype = in.Zone, in.Type
	if hint, err := n.metaValue(ctx, "instance/instance-type"); err == nil && hint != in.Type {
		klog.Warningf("eni: the instance metadata says type %s, DescribeInstances %s: using the API's", hint, in.Type)
	}
	if len(cfg.VSwitchesFor(n.zone)) == 0 {
		return nil, fmt.Errorf("Backend.vswitches: no vSwitch configured for this node's zone %s", n.zone)
	}
	types, err := d.cloud.InstanceTypes(ctx, n.itype)
	if err != nil {
		return nil, fmt.Errorf("eni: DescribeInstanceTypes %s: %w", n.itype, err)
	}
	var t *aliyun.InstanceType
	for i := range types {
		if types[i].ID == n.itype {
			t = &types[i]
		}
	}
	if t == nil || t.ENIs < 2 || t.IPv4PerENI < 1 {
		return nil, fmt.Errorf("eni: instance type %s: DescribeInstanceTypes gives no usable ENI figures (%+v): it needs at least one secondary ENI", n.itype, t)
	}
	n.limits = pool.Limits{InstanceType: t.ID, ENIs: t.ENIs - 1, AddrsPerENI: t.IPv4PerENI}

	// The three truths, before anything is served.
	file, err := n.store.Load()
	if err != nil {
		return nil, fmt.Errorf("eni: %w (weftd will not hand out addresses it cannot account for: move the file aside to start afresh)", err)
	}
	if err := n.refreshVSwitches(ctx); err != nil {
		return nil, err
	}
	cloudENIs, err := n.ownENIs(ctx)
	if err != nil {
		return nil, err
	}
	obs, err := d.host.Observe()
	if err != nil {
		return nil, fmt.Errorf("eni: read the host's pod datapath: %w", err)
	}
	var truths reconcile.Truths
	truths.Checkpoint, truths.VethName = file.Records, datapath.HostVethName
	for _, e := range cloudENIs {
		truths.Cloud = append(truths.Cloud, cloudView(e))
	}
	for _, p := range obs.Pods {
		truths.Host = append(truths.Host, reconcile.HostPod{Veth: p.Veth, IP: p.IP})
	}
	out := reconcile.Reconcile(truths)
	for _, f := range out.Findings {
		klog.Warningf("eni: start-up reconcile: %s", f.Message)
		n.d.events.Eventf("Warning", "ENIReconcile", "%s", f.Message)
	}
	n.pool, err = pool.New(pool.Config{
		MinIdle: cfg.MinPoolSize, TargetIdle: cfg.WarmPoolTarget, MaxIdle: cfg.MaxPoolSize, Cooldown: cfg.Cooldown,
		IdleReclaimAfter: cfg.IdleIPReclaimAfter, ReclaimBatch: cfg.IdleIPReclaimBatchSize,
		ReclaimJitter: cfg.IdleIPReclaimJitterFactor, Limits: n.limits, Instance: n.instance,
	}, d.clock, n.store, out.Records)
	if err != nil {
		return nil, fmt.Errorf("eni: %w", err)
	}
	if err := n.store.Save(&checkpoint.File{Version: checkpoint.Version, Instance: n.instance, Records: n.pool.Records()}); err != nil {
		return nil, fmt.Errorf("eni: %w", err)
	}
	n.applyENIs(ctx, cloudENIs)
	st := n.pool.Stats()
	klog.Infof("eni: instance %s (%s, zone %s): up to %d pods ((%d ENIs - the primary) x %d addresses); %d ENIs, %d addresses in use, %d idle, %d cooling down, %d quarantined",
		n.instance, n.itype, n.zone, n.limits.Pods(), t.ENIs, t.IPv4PerENI, st.ENIs, st.Assigned, st.Idle, st.Cooldown, st.Quarantined)
	if err := n.d.status.SetCapacity(ctx, n.limits.Pods()); err != nil {
		klog.Warningf("eni: advertise the node's capacity: %v", err)
	}
	return n, nil
}

func (n *Network) rules() datapath.Rules {
	return datapath.Rules{ToPod: n.cfg.RulePriorityToPod, FromPod: n.cfg.RulePriorityFromPod}
}

func (n *Network) metaValue(ctx context.Context, path string) (string, error) {
	v, err := n.d.meta.Get(ctx, path)
	if err != nil {
		return "", fmt.Errorf("eni: instance metadata %s: %w", path, err)
	}
	return strings.TrimSpace(v), nil
}

// Outputs: no lease, no subnet.env, no masquerade (pods keep their VPC addresses everywhere in the VPC; leaving
// it, the VPC's NAT gateway translates as for any VPC address).
func (n *Network) Outputs() backend.Outputs {
	return backend.Outputs{PublishesNodeStatus: true}
}

// Ready: the node can serve pods once one of its ENIs is usable.
func (n *Network) Ready() (bool, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.socketErr != "" {
		return false, "eni: " + n.socketErr
	}
	for _, e := range n.enis {
		if e.usable {
			return true, ""
		}
	}
	why := "eni: no usable ENI yet"
	if n.state != "" {
		why += ": " + n.state + ": " + n.stateMsg
	} else if n.cloudErr != "" {
		why += ": " + n.cloudErr
	}
	return false, why
}

// Run serves the CNI plugin and keeps the pool, the host and the node status converged until ctx ends.
func (n *Network) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	run := func(f func(context.Context)) { wg.Add(1); go func() { defer wg.Done(); f(ctx) }() }
	run(n.serve)
	run(n.fillLoop)
	run(n.hostLoop)
	run(n.gcLoop)
	run(n.eniGCLoop)
	run(n.statusLoop)
}

// poke wakes the fill loop.
func (n *Network) poke() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// poolSync is how often the agent re-reads its ENIs from the cloud without a reason (Terway's
// ip_pool_sync_period is 120 s).
const poolSync = 2 * time.Minute

// fillLoop acts on the pool's plan: addresses assigned in batches, ENIs created and attached, idle addresses
// released. It refreshes its view of the cloud after its own changes and every poolSync; a failed call backs off.
func (n *Network) fillLoop(ctx context.Context) {
	resync := time.NewTicker(poolSync)
	defer resync.Stop()
	b := backoff.Backoff{Min: time.Second, Max: 30 * time.Second}
	// settling paces the re-reads while one of the node's ENIs is not usable yet (attached but not yet on the
	// host, its metadata lagging): soon at first, then less often.
	settling := backoff.Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second}
	var settleAt time.Time
	for {
		changed := n.pool.Changed()
		plan := n.pool.Plan()
		acted, err := n.execute(ctx, plan)
		if ctx.Err() != nil {
			return
		}
		if acted || err != nil {
			if rerr := n.refresh(ctx); rerr != nil && err == nil {
				err = rerr
			}
		}
		var wait <-chan time.Time
		if err != nil {
			klog.Warningf("eni: pool: %v", err)
			if b.Wait(ctx) != nil {
				return
			}
			continue
		}
		b.Reset()
		if acted {
			continue // see whether the plan is complete
		}
		if !plan.NextCheck.IsZero() {
			wait = time.After(max(time.Until(plan.NextCheck), 10*time.Millisecond))
		}
		// One look is due at a time: waking for another reason (a pod waiting, the pool changing) keeps the
		// look already scheduled instead of backing off further.
		var settle <-chan time.Time
		if why := n.unsettled(); why != "" {
			if settleAt.IsZero() {
				d := settling.Next()
				settleAt = time.Now().Add(d)
				klog.V(2).Infof("eni: %s; looking again in %s", why, d.Round(time.Millisecond))
			}
			settle = time.After(max(time.Until(settleAt), 0))
		} else {
			settling.Reset()
			settleAt = time.Time{}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-n.kick:
		case <-wait:
		case <-settle:
			settleAt = time.Time{}
			if err := n.refresh(ctx); err != nil {
				klog.Warningf("eni: pool sync: %v", err)
			}
		case <-resync.C:
			if err := n.refresh(ctx); err != nil {
				klog.Warningf("eni: pool sync: %v", err)
			}
		}
	}
}

// unsettled says which of the node's ENIs is not usable yet and why ("" when all are).
func (n *Network) unsettled() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, e := range n.enis {
		if !e.usable {
			return fmt.Sprintf("%s is not usable yet: %s", id, e.why)
		}
	}
	return ""
}

// execute carries out one plan; acted says whether anything changed in the cloud.
func (n *Network) execute(ctx context.Context, p pool.Plan) (acted bool, err error) {
	var errs []error
	for _, a := range p.Assign {
		ips, err := n.d.cloud.AssignIPs(ctx, a.ENI, a.N)
		n.cloudResult("AssignPrivateIpAddresses", err)
		if err != nil {
			if aliyun.IsVSwitchExhausted(err) {
				n.markExhausted(ctx, n.vswitchOf(a.ENI), err)
			}
			errs = append(errs, fmt.Errorf("assign %d addresses to %s: %w", a.N, a.ENI, err))
			continue
		}
		n.d.m.calls.WithLabelValues("AssignPrivateIpAddresses").Inc()
		n.pool.Assigned(a.ENI, ips)
		n.setState(ctx, "", "")
		acted = true
	}
	if p.CreateENI > 0 {
		ok, err := n.createENI(ctx, p.CreateENI)
		acted = acted || ok
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, u := range p.Unassign {
		if err := n.pool.BeginUnassign(u); err != nil {
			continue // the plan went stale (an address was taken meanwhile)
		}
		err := n.d.cloud.UnassignIPs(ctx, u.ENI, u.IPs)
		n.cloudResult("UnassignPrivateIpAddresses", err)
		n.pool.Unassigned(u.ENI, u.IPs, err)
		if err != nil {
			errs = append(errs, fmt.Errorf("release %d idle addresses of %s: %w", len(u.IPs), u.ENI, err))
			continue
		}
		klog.V(2).Infof("eni: released %d idle addresses of %s: %v", len(u.IPs), u.ENI, u.IPs)
		acted = true
	}
	return acted, errors.Join(errs...)
}

// createENI creates one ENI in the first usable vSwitch of the node's zone (policy order), attaches it and waits
// until it is InUse and on the host. An ENI that cannot be attached is deleted again; one left behind by a crash
// is adopted by refresh (it carries this instance's tag) or deleted by the cluster's ENI collector.
func (n *Network) createENI(ctx context.Context, secondary int) (bool, error) {
	n.mu.Lock()
	limited := time.Now().Before(n.eniLimitUntil)
	n.mu.Unlock()
	if limited {
		return false, fmt.Errorf("the instance refused another ENI; not trying again before %s", n.eniLimitUntil.Format(time.RFC3339))
	}
	candidates := n.candidateVSwitches()
	if len(candidates) == 0 {
		// All are marked exhausted: the VPC may have freed addresses since (an ENI of another node deleted, a
		// vSwitch's reservations given back). DescribeVSwitches says, at the fill loop's backoff, so that the
		// node recovers as soon as there is room rather than after the mark runs out.
		if err := n.refreshVSwitches(ctx); err != nil {
			return false, err
		}
		candidates = n.refilled(secondary + 1)
	}
	if len(candidates) == 0 {
		return false, fmt.Errorf("no vSwitch of zone %s has free addresses (all %d configured are exhausted: %s)", n.zone, len(n.cfg.VSwitchesFor(n.zone)), strings.Join(n.cfg.VSwitchesFor(n.zone), ", "))
	}
	tags := map[string]string{TagCluster: n.cfg.ClusterID, TagNode: n.d.deps.NodeName, TagInstance: n.instance, TagCreatedBy: "weftd"}
	for k, v := range n.cfg.ENITags {
		tags[k] = v
	}
	var errs []error
	for _, sw := range candidates {
		e, err := n.d.cloud.CreateENI(ctx, aliyun.NewENI{VSwitchID: sw, SecurityGroupIDs: n.cfg.SecurityGroups,
			SecondaryIPs: secondary, Tags: tags, Description: "weft pod addresses of node " + n.d.deps.NodeName})
		n.cloudResult("CreateNetworkInterface", err)
		if err != nil {
			if aliyun.IsVSwitchExhausted(err) {
				n.markExhausted(ctx, sw, err)
				errs = append(errs, err)
				continue // fail over to the next vSwitch
			}
			return false, fmt.Errorf("create an ENI in %s: %w", sw, err)
		}
		n.d.m.calls.WithLabelValues("CreateNetworkInterface").Inc()
		klog.Infof("eni: created %s (%s, %d secondary addresses) in %s", e.ID, e.MAC, len(e.Secondary), sw)
		if err := n.attach(ctx, e.ID); err != nil {
			return true, err
		}
		n.setState(ctx, "", "")
		return true, nil
	}
	return false, fmt.Errorf("create an ENI: %w", errors.Join(errs...))
}

// attach attaches an Available ENI of this node and waits (at most a minute) until the API says InUse.
func (n *Network) attach(ctx context.Context, id string) error {
	err := n.d.cloud.AttachENI(ctx, n.instance, id)
	n.cloudResult("AttachNetworkInterface", err)
	if err != nil {
		if aliyun.IsENILimit(err) {
			n.mu.Lock()
			n.eniLimitUntil = time.Now().Add(exhaustedFor)
			n.mu.Unlock()
			n.d.events.Eventf("Warning", "ENILimitExceeded", "instance %s (%s) refused another ENI: %v", n.instance, n.itype, err)
			n.setState(ctx, "ENILimitExceeded", fmt.Sprintf("the instance cannot take another ENI (%s allows %d): %v", n.itype, n.limits.ENIs+1, err))
		}
		if derr := n.d.cloud.DeleteENI(ctx, id); derr != nil {
			klog.Warningf("eni: delete %s after its failed attach: %v (the ENI collector removes it later)", id, derr)
		}
		return fmt.Errorf("attach %s: %w", id, err)
	}
	n.d.m.calls.WithLabelValues("AttachNetworkInterface").Inc()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		enis, err := n.d.cloud.ENIs(ctx, aliyun.ENIFilter{IDs: []string{id}})
		n.cloudResult("DescribeNetworkInterfaces", err)
		if err == nil && len(enis) == 1 && enis[0].Status == "InUse" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return fmt.Errorf("attach %s: not InUse after a minute", id)
}

// ownENIs lists the ENIs this node may use: attached to this instance (or left Available by an attach that did
// not complete) and carrying this cluster's tag.
func (n *Network) ownENIs(ctx context.Context) ([]aliyun.ENI, error) {
	list, err := n.d.cloud.ENIs(ctx, aliyun.ENIFilter{Tags: map[string]string{TagCluster: n.cfg.ClusterID, TagInstance: n.instance}})
	n.cloudResult("DescribeNetworkInterfaces", err)
	if err != nil {
		return nil, fmt.Errorf("eni: list this node's ENIs: %w", err)
	}
	return list, nil
}

// refresh re-reads this node's ENIs from the cloud and sets them up on the host.
func (n *Network) refresh(ctx context.Context) error {
	list, err := n.ownENIs(ctx)
	if err != nil {
		return err
	}
	n.applyENIs(ctx, list)
	return nil
}

// applyENIs sets up the InUse ENIs on the host, attaches this node's Available ones, and hands the result to the
// pool; addresses the pool loses with an ENI are reported.
func (n *Network) applyENIs(ctx context.Context, list []aliyun.ENI) {
	var view []pool.ENI
	seen := map[string]bool{}
	var left []*eniState
	for _, e := range list {
		seen[e.ID] = true
		st := n.setUp(ctx, e)
		n.mu.Lock()
		view = append(view, pool.ENI{ID: e.ID, MAC: e.MAC, VSwitchID: e.VSwitchID, Addrs: append([]netip.Addr{e.PrimaryIP}, e.Secondary...), Usable: st.usable})
		switch {
		case st.usable && st.lost:
			klog.Infof("eni: %s is usable again: its pods have their network back", e.ID)
			st.lost = false
		case st.usable:
		case st.served && st.gone && !st.lost:
			left = append(left, st)
		}
		if st.usable {
			st.served = true
		}
		n.mu.Unlock()
	}
	n.mu.Lock()
	for id := range n.enis {
		if !seen[id] {
			delete(n.enis, id)
		}
	}
	n.mu.Unlock()
	n.pool.SetENIs(view)
	for _, st := range left {
		n.leftHost(st)
	}
	if lost := n.pool.Lost(); len(lost) > 0 {
		n.reportLost("no longer assigned in the cloud (the ENI deleted or the address unassigned behind weftd's back)", lost)
	}
	n.d.m.setPool(n.pool.Stats())
}

// poolView is the pool's view of the ENIs as the agent knows them now; n.mu held.
func (n *Network) poolView() []pool.ENI {
	var view []pool.ENI
	for _, st := range n.enis {
		view = append(view, pool.ENI{ID: st.ID, MAC: st.MAC, VSwitchID: st.VSwitchID, Addrs: append([]netip.Addr{st.PrimaryIP}, st.Secondary...), Usable: st.usable})
	}
	return view
}

// leftHost reports the pods of an ENI that was usable and has left the host behind weftd's back (detached in the
// console, attached elsewhere): they have lost their network. Their addresses stay theirs (the ENI still holds
// them): none is handed to another pod, and they work again if the ENI comes back.
func (n *Network) leftHost(st *eniState) {
	n.mu.Lock()
	if st.lost {
		n.mu.Unlock()
		return
	}
	st.lost = true
	id, why := st.ID, st.why
	n.mu.Unlock()
	var pods []checkpoint.Record
	for _, r := range n.pool.Records() {
		if r.ENI == id && r.State == checkpoint.Assigned {
			pods = append(pods, r)
		}
	}
	klog.Errorf("eni: %s left the host behind weftd's back (%s)", id, why)
	if len(pods) > 0 {
		n.reportLost(fmt.Sprintf("on ENI %s, which left the host behind weftd's back (%s)", id, why), pods)
	}
}

// reportLost says, in the log for each pod and in one Event for all (Events of one reason are spaced, so one per
// pod would drop all but the first), that pods have lost their network.
func (n *Network) reportLost(why string, recs []checkpoint.Record) {
	var names []string
	for _, r := range recs {
		klog.Errorf("eni: address %s of pod %s/%s (ENI %s) is %s: the pod has lost its network", r.IP, r.PodNamespace, r.PodName, r.ENI, why)
		names = append(names, fmt.Sprintf("%s/%s (%s)", r.PodNamespace, r.PodName, r.IP))
	}
	const most = 20
	more := ""
	if len(names) > most {
		more = fmt.Sprintf(" and %d more", len(names)-most)
		names = names[:most]
	}
	n.d.events.Eventf("Warning", "PodAddressLost", "%d pods lost their network: their addresses are %s: %s%s", len(recs), why, strings.Join(names, ", "), more)
}

// setUp brings one ENI to a usable state on the host (or attaches it when it is this node's and Available).
func (n *Network) setUp(ctx context.Context, e aliyun.ENI) *eniState {
	n.mu.Lock()
	st := n.enis[e.ID]
	if st == nil {
		st = &eniState{}
		n.enis[e.ID] = st
	}
	st.ENI = e
	sw := n.vswitches[e.VSwitchID]
	n.mu.Unlock()
	usable, why, gone := false, "", true
	defer func() {
		n.mu.Lock()
		st.usable, st.why, st.gone = usable, why, gone && !usable
		n.mu.Unlock()
	}()
	switch e.Status {
	case "InUse":
	case "Available":
		if e.InstanceID == "" && e.Tags[TagInstance] == n.instance {
			klog.Infof("eni: attaching %s, this node's and left detached", e.ID)
			if err := n.attach(ctx, e.ID); err != nil {
				why = err.Error()
			}
		}
		why = "detached"
		return st
	default:
		why = e.Status
		return st
	}
	if e.InstanceID != n.instance {
		why = "attached to " + e.InstanceID
		return st
	}
	mac, err := net.ParseMAC(e.MAC)
	if err != nil {
		why = fmt.Sprintf("MAC %q: %v", e.MAC, err)
		return st
	}
	link, err := n.linkByMAC(mac)
	if err != nil && !errors.Is(err, datapath.ErrNotFound) {
		// A failed read of the host's links (a netlink dump interrupted by the churn of pod veths) says nothing
		// about the ENI: it keeps what it had, rather than its pods losing their rules until the next look.
		n.mu.Lock()
		was := st.usable
		n.mu.Unlock()
		klog.Warningf("eni: %s: %v", e.ID, err)
		usable, why, gone = was, err.Error(), false
		return st
	}
	if err != nil {
		why = "not on the host yet: " + err.Error()
		return st
	}
	gone = false
	gw := n.gateway(ctx, e.MAC, sw.CIDR)
	if !gw.IsValid() || !sw.CIDR.IsValid() {
		why = "its vSwitch " + e.VSwitchID + " is unknown"
		return st
	}
	table := datapath.TableFor(n.cfg.RouteTableBase, link.Attrs().Index)
	idx, err := n.d.host.EnsureENI(datapath.ENILink{MAC: mac, Gateway: gw, CIDR: sw.CIDR, Table: table, MTU: n.cfg.MTU})
	if err != nil {
		why = err.Error()
		return st
	}
	n.mu.Lock()
	st.gateway, st.cidr, st.ifindex, st.table = gw, sw.CIDR, idx, datapath.TableFor(n.cfg.RouteTableBase, idx)
	n.mu.Unlock()
	usable = true
	return st
}

// linkByMAC is the host's link of an ENI; a failed read of the links (not a complete one without it) is tried
// again a few times.
func (n *Network) linkByMAC(mac net.HardwareAddr) (netlink.Link, error) {
	var err error
	for try := 0; try < 3; try++ {
		var l netlink.Link
		if l, err = n.d.host.LinkByMAC(mac); err == nil || errors.Is(err, datapath.ErrNotFound) {
			return l, err
		}
	}
	return nil, err
}

// gateway is the vSwitch gateway of an ENI: from the metadata (per MAC), else the block's third-last address,
// where the VPC puts it.
func (n *Network) gateway(ctx context.Context, mac string, cidr netip.Prefix) netip.Addr {
	if v, err := n.d.meta.Get(ctx, "network/interfaces/macs/"+mac+"/gateway"); err == nil {
		if a, err := netip.ParseAddr(strings.TrimSpace(v)); err == nil {
			return a
		}
	}
	if !cidr.IsValid() || !cidr.Addr().Is4() {
		return netip.Addr{}
	}
	b := cidr.Masked().Addr().As4()
	host := uint32(1)<<(32-cidr.Bits()) - 1
	v := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) | host
	v -= 2
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (n *Network) refreshVSwitches(ctx context.Context) error {
	list, err := n.d.cloud.VSwitches(ctx, n.d.identity.VPCID)
	n.cloudResult("DescribeVSwitches", err)
	if err != nil {
		return fmt.Errorf("eni: list the VPC's vSwitches: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, sw := range list {
		n.vswitches[sw.ID] = sw
	}
	for _, id := range n.cfg.VSwitchesFor(n.zone) {
		if _, ok := n.vswitches[id]; !ok {
			return fmt.Errorf("Backend.vswitches: %s is not a vSwitch of VPC %s", id, n.d.identity.VPCID)
		}
	}
	return nil
}

func (n *Network) vswitchOf(eni string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if e := n.enis[eni]; e != nil {
		return e.VSwitchID
	}
	return ""
}

// candidateVSwitches are the zone's vSwitches not marked exhausted, in the configured policy's order.
func (n *Network) candidateVSwitches() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	var out []string
	for _, id := range n.cfg.VSwitchesFor(n.zone) {
		if now.Before(n.exhausted[id]) {
			continue
		}
		out = append(out, id)
	}
	if n.cfg.VSwitchPolicy == PolicyRandom {
		rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	}
	return out
}

// refilled clears the exhaustion mark of the zone's vSwitches that DescribeVSwitches last listed with at least
// need free addresses and returns the candidates then.
func (n *Network) refilled(need int) []string {
	n.mu.Lock()
	for _, id := range n.cfg.VSwitchesFor(n.zone) {
		if sw, ok := n.vswitches[id]; ok && sw.Available >= need && !n.exhausted[id].IsZero() {
			klog.Infof("eni: vSwitch %s has %d free addresses again", id, sw.Available)
			delete(n.exhausted, id)
		}
	}
	n.mu.Unlock()
	return n.candidateVSwitches()
}

// markExhausted takes a vSwitch out of selection for a while and says so on the node.
func (n *Network) markExhausted(ctx context.Context, sw string, cause error) {
	if sw == "" {
		return
	}
	n.mu.Lock()
	n.exhausted[sw] = time.Now().Add(exhaustedFor)
	left := 0
	for _, id := range n.cfg.VSwitchesFor(n.zone) {
		if !time.Now().Before(n.exhausted[id]) {
			left++
		}
	}
	n.mu.Unlock()
	msg := fmt.Sprintf("vSwitch %s has no free addresses (%v); %d other vSwitches of zone %s left to fail over to", sw, cause, left, n.zone)
	if left == 0 {
		all := n.cfg.VSwitchesFor(n.zone)
		msg = fmt.Sprintf("no vSwitch of zone %s has free addresses (%d configured: %s; %s was the last tried: %v): free addresses in them or configure another vSwitch",
			n.zone, len(all), strings.Join(all, ", "), sw, cause)
	}
	klog.Warning("eni: " + msg)
	n.d.events.Eventf("Warning", "VSwitchExhausted", "%s", msg)
	n.setState(ctx, "VSwitchExhausted", msg)
}

// setState records a condition the node is in (cleared by a successful allocation path in statusLoop).
func (n *Network) setState(_ context.Context, state, msg string) {
	n.mu.Lock()
	n.state, n.stateMsg = state, msg
	n.mu.Unlock()
}

// cloudResult tracks the API's health: three failures in a row (other than a vSwitch running out, which is a
// state, not an outage) put the pool in degraded mode, where it releases nothing; a success ends it.
func (n *Network) cloudResult(action string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err == nil {
		n.cloudErr, n.cloudFail = "", 0
		if n.pool != nil {
			n.pool.SetDegraded(false, "")
		}
		return
	}
	if aliyun.IsVSwitchExhausted(err) || aliyun.IsENILimit(err) || errors.Is(err, context.Canceled) {
		return
	}
	n.cloudFail++
	n.cloudErr = fmt.Sprintf("%s: %v", action, err)
	n.d.m.errors.WithLabelValues(action).Inc()
	if n.cloudFail >= 3 && n.pool != nil {
		n.pool.SetDegraded(true, n.cloudErr)
	}
}

// hostLoop keeps the host's pod rules equal to the pool's records and the ENIs' tables in place (restoring them
// when someone removes them), every few seconds.
func (n *Network) hostLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		if err := n.syncHost(); err != nil {
			klog.Warningf("eni: host rules: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Network) syncHost() error {
	n.mu.Lock()
	tables := map[string]int{}
	links := map[string]datapath.ENILink{}
	for id, e := range n.enis {
		if e.table != 0 {
			// Also while the ENI is not usable (it left the host, it is being set up again): its pods keep
			// their rules, to the table it had, until it is back (with its new table) or gone.
			tables[id] = e.table
		}
		if !e.usable {
			continue
		}
		mac, _ := net.ParseMAC(e.MAC)
		links[id] = datapath.ENILink{MAC: mac, Gateway: e.gateway, CIDR: e.cidr, Table: e.table, MTU: n.cfg.MTU}
	}
	n.mu.Unlock()
	var errs []error
	for id, l := range links {
		if _, err := n.d.host.EnsureENI(l); err != nil {
			if errors.Is(err, datapath.ErrNotFound) {
				// The link of a usable ENI is gone: detached behind weftd's back. Stop serving its addresses,
				// report its pods and have the fill loop read the ENIs again now, not at the next sync.
				n.mu.Lock()
				st := n.enis[id]
				if st != nil {
					st.usable, st.gone, st.why = false, true, "its link left the host"
				}
				view := n.poolView()
				n.mu.Unlock()
				if st != nil {
					n.pool.SetENIs(view)
					n.leftHost(st)
				}
				n.poke()
			}
			errs = append(errs, err)
		}
	}
	// A pod's rules are the plugin's to make while its ADD is under way: an allocation younger than gcMinAge
	// whose address has no rule yet is left alone (adding them here made the plugin's own add fail with "file
	// exists"); once it has one, or is older, its rules are kept whole and right (a table that changed with its
	// ENI's ifindex, rules someone removed).
	records := n.pool.Records()
	now := n.d.clock.Now()
	var present map[netip.Addr]bool
	for _, r := range records {
		if r.State == checkpoint.Assigned && now.Sub(r.AssignedAt) < gcMinAge {
			obs, err := n.d.host.Observe()
			if err != nil {
				return errors.Join(append(errs, err)...) // nothing removed on a partial view
			}
			present = map[netip.Addr]bool{}
			for _, pr := range obs.Rules {
				present[pr.IP] = true
			}
			break
		}
	}
	var want []datapath.PodRule
	for _, r := range records {
		if r.State != checkpoint.Assigned {
			continue
		}
		if now.Sub(r.AssignedAt) < gcMinAge && !present[r.IP] {
			continue
		}
		if t, ok := tables[r.ENI]; ok {
			want = append(want, datapath.PodRule{IP: r.IP, Table: t})
		}
	}
	if err := n.d.host.SyncRules(want); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// statusLoop publishes readiness to the node's NetworkUnavailable condition when it changes.
func (n *Network) statusLoop(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		ok, why := n.Ready()
		key := fmt.Sprint(ok, why)
		n.mu.Lock()
		changed := key != n.published
		n.mu.Unlock()
		if changed && n.d.deps.SetNodeNetworkUnavailable {
			reason := "WeftENIReady"
			if !ok {
				reason = "WeftENINotReady"
				n.mu.Lock()
				if n.state != "" {
					reason = n.state
				}
				n.mu.Unlock()
			}
			if err := n.d.status.SetNetworkReady(ctx, ok, reason, why); err != nil {
				klog.Warningf("eni: node condition: %v", err)
			} else {
				n.mu.Lock()
				n.published = key
				n.mu.Unlock()
			}
		}
		n.publishExhausted(ctx)
		n.d.m.setPool(n.pool.Stats())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// publishExhausted writes the node's WeftENIExhausted condition when the agent's state changes.
func (n *Network) publishExhausted(ctx context.Context) {
	n.mu.Lock()
	state, msg, last := n.state, n.stateMsg, n.publishedState
	n.mu.Unlock()
	key := state + "\x00" + msg
	if key == last {
		return
	}
	if err := n.d.status.SetExhausted(ctx, state != "", state, msg); err != nil {
		klog.Warningf("eni: node condition %s: %v", ConditionExhausted, err)
		return
	}
	n.mu.Lock()
	n.publishedState = key
	n.mu.Unlock()
}

// cloudView is an ENI as the reconcile sees it.
func cloudView(e aliyun.ENI) reconcile.CloudENI {
	return reconcile.CloudENI{ID: e.ID, MAC: e.MAC, Status: e.Status, InstanceID: e.InstanceID,
		Addrs: append([]netip.Addr{e.PrimaryIP}, e.Secondary...), Tags: e.Tags}
}
