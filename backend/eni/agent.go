package eni

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/cloud/aliyun"
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
	AssignIPv6(ctx context.Context, eniID string, n int) ([]netip.Addr, error)
	UnassignIPv6(ctx context.Context, eniID string, ips []netip.Addr) error
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
	EnsureENIIPv6(ifindex, table int, gw netip.Addr, cidr netip.Prefix) error
	Observe() (datapath.Observed, error)
	SyncRules(want []datapath.PodRule, hold []netip.Addr) error
	SyncRules6(want []datapath.PodRule, hold []netip.Addr) error // dual stack (hostloop_v6.go)
	ObserveRules6() ([]datapath.PodRule, error)                  // dual stack
	ObservePods6() ([]datapath.HostPod, error)                   // dual stack: the start-up reconcile (dual.go)
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
	host       Host
	status     NodeStatus
	events     Events
	pods       Pods
	nodes      Nodes
	sts        StatefulSets // reserve.go; nil: reservations end by their TTL only
	namespaces Namespaces   // podnet.go; nil: no namespace defaults
	clock      pool.Clock
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
	// dual stack (dual.go): the vSwitch's IPv6 gateway and block, set up on the ENI's table
	gateway6 netip.Addr
	cidr6    netip.Prefix
}

// Network is a node's eni network: the agent, the CNI handler and the garbage collector.
type Network struct {
	d         agentDeps
	cfg       Config
	instance  string
	zone      string
	itype     string
	limits    pool.Limits
	exclusive bool // exclusive ENI mode (exclusive.go)
	trunking  bool // exclusive mode with trunk member ENIs (trunk.go)
	store     checkpoint.Store
	pool      *pool.Pool
	kick      chan struct{}

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
	if err := TrunkCheck(cfg.EnableENITrunking, *t); err != nil { // trunk.go
		return nil, err
	}
	n.limits = pool.Limits{InstanceType: t.ID, ENIs: t.ENIs - 1, AddrsPerENI: t.IPv4PerENI}
	mode, err := n.nodeMode(ctx) // exclusive.go
	if err != nil {
		return nil, err
	}
	if err := TrunkModeCheck(cfg.EnableENITrunking, mode); err != nil { // trunk.go
		return nil, err
	}
	if n.exclusive = mode == ModeExclusive; n.exclusive {
		n.limits = ExclusiveLimits(t.ID, t.ENIs)
	}
	if n.trunking = n.exclusive && cfg.EnableENITrunking; n.trunking {
		if _, ok := d.cloud.(TrunkCloud); !ok {
			return nil, fmt.Errorf("eni: Backend.enable_eni_trunking: this cloud client cannot attach trunk member ENIs")
		}
		n.limits = TrunkLimits(*t)
	}

	// The three truths, before anything is served.
	file, err := n.store.Load()
	if err != nil {
		return nil, fmt.Errorf("eni: %w (weftd will not hand out addresses it cannot account for: move the file aside to start afresh)", err)
	}
	if err := n.refreshVSwitches(ctx); err != nil {
		return nil, err
	}
	if err := n.applyDual(*t); err != nil { // dual.go
		return nil, err
	}
	cloudENIs, err := n.ownENIs(ctx)
	if err != nil {
		return nil, err
	}
	if err := n.checkModeSwitch(file.Records, cloudENIs); err != nil { // exclusive.go
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
	if out, err = n.reconcileIPv6(out, cloudENIs); err != nil { // dual.go
		return nil, err
	}
	for _, f := range out.Findings {
		klog.Warningf("eni: start-up reconcile: %s", f.Message)
		n.d.events.Eventf("Warning", "ENIReconcile", "%s", f.Message)
	}
	pc := pool.Config{
		MinIdle: cfg.MinPoolSize, TargetIdle: cfg.WarmPoolTarget, MaxIdle: cfg.MaxPoolSize, Cooldown: cfg.Cooldown,
		IdleReclaimAfter: cfg.IdleIPReclaimAfter, ReclaimBatch: cfg.IdleIPReclaimBatchSize,
		ReclaimJitter: cfg.IdleIPReclaimJitterFactor, Limits: n.limits, Instance: n.instance,
		ReserveTTL: cfg.IPReservationTTL, Default: DefaultClass(cfg), // podnet.go
	}
	if n.exclusive {
		exclusiveSizing(&pc, cfg, n.limits)
	}
	n.pool, err = pool.New(pc, d.clock, n.store, out.Records)
	if err != nil {
		return nil, fmt.Errorf("eni: %w", err)
	}
	if err := n.store.Save(&checkpoint.File{Version: checkpoint.Version, Instance: n.instance, Records: n.pool.Records()}); err != nil {
		return nil, fmt.Errorf("eni: %w", err)
	}
	n.applyENIs(ctx, cloudENIs)
	st := n.pool.Stats()
	if n.trunking {
		klog.Infof("eni: instance %s (%s, zone %s): exclusive ENI mode with trunking: up to %d pods (%d ENIs - the primary - the trunk ENI + %d trunk member ENIs); %d ENIs, %d in use, %d idle, %d reserved",
			n.instance, n.itype, n.zone, n.limits.Pods(), t.ENIs, n.limits.Members, st.ENIs, st.Assigned, st.Idle, st.Reserved)
	} else if n.exclusive {
		klog.Infof("eni: instance %s (%s, zone %s): exclusive ENI mode: up to %d pods (%d ENIs - the primary); %d ENIs, %d in use, %d idle, %d reserved",
			n.instance, n.itype, n.zone, n.limits.Pods(), t.ENIs, st.ENIs, st.Assigned, st.Idle, st.Reserved)
	} else if n.limits.IPv6PerENI > 0 {
		n.logDualStart(t.ENIs, t.IPv4PerENI, st) // dual.go
	} else {
		klog.Infof("eni: instance %s (%s, zone %s): up to %d pods ((%d ENIs - the primary) x %d addresses); %d ENIs, %d addresses in use, %d idle, %d cooling down, %d quarantined, %d reserved",
			n.instance, n.itype, n.zone, n.limits.Pods(), t.ENIs, t.IPv4PerENI, st.ENIs, st.Assigned, st.Idle, st.Cooldown, st.Quarantined, st.Reserved)
	}
	if err := n.publishMode(ctx); err != nil {
		klog.Warningf("eni: %v", err)
	}
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
		if e.usable && inPool(e.ENI) { // the trunk serves no pod by itself (trunk.go)
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
	run(n.reserveLoop)
}

// poke wakes the fill loop.
func (n *Network) poke() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}
