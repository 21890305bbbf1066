package eni

// Exclusive ENI mode (Terway's ENIOnly, its exclusive ENI node pools): each pod gets a whole ENI, moved into its
// network namespace as eth0 with the ENI's primary address (the plugin's datapath.AddExclusive).
//
// The mode is the net-conf's Backend "Mode" ("shared", the default, or "exclusive"), overridden per node by the
// node label LabelENIMode (the same two values), read once at start: a node pool labelled
// weft.io/eni-mode=exclusive runs exclusive pods while the rest of the cluster shares ENIs.
//
// The agent keeps the same pool, checkpoint and reconcile as in shared mode, sized so that an address is a whole
// ENI: one address per ENI (its primary, which is never unassigned), EniQuantity - 1 ENIs (the figure of weft
// plan's eni-exclusive), ENIs created ahead without secondary addresses, exclusive_warm_enis of them kept idle
// (floor, target and ceiling alike). The checkpoint record of a pod names its ENI and address; the ENI of an
// Assigned record is expected away from the host (inside its pod): it stays usable, its host table and rules are
// not kept, and an ENI found inside a live pod after a restart is adopted as in shared mode (the pod's host veth
// and /32 route are the host's truth). The node advertises the mode (annotation AnnotationENIMode) and its
// exclusive capacity as the extended resource ResourceENI, Terway's aliyun/eni.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/internal/eni/checkpoint"
	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/pool"
)

// The modes of Backend.Mode and of LabelENIMode.
const (
	ModeShared    = cniproto.ModeShared
	ModeExclusive = cniproto.ModeExclusive
)

const (
	// LabelENIMode on a node overrides Backend.Mode for that node (Terway selects its exclusive ENI node pools
	// by a node label too).
	LabelENIMode = "weft.io/eni-mode"
	// AnnotationENIMode is the mode the node runs, as weftd publishes it.
	AnnotationENIMode = "weft.io/eni-mode"
	// ResourceENI is the extended resource of exclusive ENIs a node can give pods (Terway's).
	ResourceENI = "aliyun/eni"
	// MaxHostStackCIDRs bounds host_stack_cidrs.
	MaxHostStackCIDRs = 32
)

func parseModeKey(c *Config, raw json.RawMessage) error {
	s, err := cfgString("Mode", raw)
	if err == nil && s != ModeShared && s != ModeExclusive {
		err = cfgKeyErr("Mode", raw, fmt.Sprintf("%q or %q", ModeShared, ModeExclusive))
	}
	c.Mode = s
	return err
}

func parseHostStackCIDRsKey(c *Config, raw json.RawMessage) error {
	var ss []string
	if err := json.Unmarshal(raw, &ss); err != nil {
		return cfgKeyErr("host_stack_cidrs", raw, "a list of IPv4 prefixes such as \"192.168.0.0/16\"")
	}
	if len(ss) > MaxHostStackCIDRs {
		return fmt.Errorf("Backend.host_stack_cidrs: %d prefixes, expected at most %d", len(ss), MaxHostStackCIDRs)
	}
	c.HostStackCIDRs = nil
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() || p.Masked() != p || p.Bits() == 0 {
			return cfgKeyErr("host_stack_cidrs", raw, fmt.Sprintf("IPv4 prefixes (network address, no host bits, not 0.0.0.0/0), not %q", clipValue(s)))
		}
		c.HostStackCIDRs = append(c.HostStackCIDRs, p)
	}
	return nil
}

func clipValue(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// NodeMode is the mode a node runs: its LabelENIMode label when set, else the configured one. An unknown label
// value is an error naming the label.
func NodeMode(configured string, labels map[string]string) (string, error) {
	v, ok := labels[LabelENIMode]
	if !ok {
		if configured == "" {
			return ModeShared, nil
		}
		return configured, nil
	}
	if v != ModeShared && v != ModeExclusive {
		return "", fmt.Errorf("node label %s=%q: expected %q or %q", LabelENIMode, clipValue(v), ModeShared, ModeExclusive)
	}
	return v, nil
}

// ExclusiveLimits are the pool's limits in exclusive mode: EniQuantity - 1 ENIs of one address each.
func ExclusiveLimits(instanceType string, eniQuantity int) pool.Limits {
	return pool.Limits{InstanceType: instanceType, ENIs: eniQuantity - 1, AddrsPerENI: 1, Exclusive: true}
}

// exclusiveSizing sizes the pool for whole ENIs: exclusive_warm_enis idle ENIs, kept (an ENI's primary is never
// released).
func exclusiveSizing(pc *pool.Config, cfg Config, limits pool.Limits) {
	pc.Limits = limits
	pc.MinIdle, pc.TargetIdle, pc.MaxIdle = cfg.ExclusiveWarmENIs, cfg.ExclusiveWarmENIs, cfg.ExclusiveWarmENIs
}

// nodeMode reads the node's label (once, at start) and says the mode it runs.
func (n *Network) nodeMode(ctx context.Context) (string, error) {
	node, err := n.d.deps.Kube.CoreV1().Nodes().Get(ctx, n.d.deps.NodeName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("eni: read node %s (its %s label): %w", n.d.deps.NodeName, LabelENIMode, err)
	}
	return NodeMode(n.cfg.Mode, node.Labels)
}

// heldENIs are, in exclusive mode, the ENIs pods hold (inside their namespaces, away from the host); nil in
// shared mode.
func (n *Network) heldENIs() map[string]bool {
	if !n.exclusive {
		return nil
	}
	held := map[string]bool{}
	for _, r := range n.pool.Records() {
		if r.State == checkpoint.Assigned {
			held[r.ENI] = true
		}
	}
	return held
}

// exclusiveReply completes an ADD reply in exclusive mode: the ENI's primary (the pod's address) and what the
// pod reaches through its second veth: the node's address, the Service CIDR, host_stack_cidrs.
func (n *Network) exclusiveReply(r *cniproto.AddReply, e *eniState) {
	if !n.exclusive {
		return
	}
	r.Mode, r.ENI.PrimaryIP = ModeExclusive, e.PrimaryIP
	if x := n.d.deps.ExtIface; x != nil && x.IfaceAddr.Is4() {
		r.HostRoutes = append(r.HostRoutes, netip.PrefixFrom(x.IfaceAddr, 32))
	}
	if n.cfg.ServiceCIDR.IsValid() {
		r.HostRoutes = append(r.HostRoutes, n.cfg.ServiceCIDR)
	}
	r.HostRoutes = append(r.HostRoutes, n.cfg.HostStackCIDRs...)
}

// publishMode writes the node's mode (AnnotationENIMode) and, in exclusive mode, its ResourceENI capacity.
func (n *Network) publishMode(ctx context.Context) error {
	mode := ModeShared
	body := map[string]any{}
	if n.exclusive {
		mode = ModeExclusive
		v := strconv.Itoa(n.limits.Pods())
		body["status"] = map[string]any{"capacity": map[string]string{ResourceENI: v}, "allocatable": map[string]string{ResourceENI: v}}
	}
	body["metadata"] = map[string]any{"annotations": map[string]string{AnnotationENIMode: mode}}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	if _, err := n.d.deps.Kube.CoreV1().Nodes().PatchStatus(ctx, n.d.deps.NodeName, b); err != nil {
		return fmt.Errorf("publish the node's ENI mode: %w", err)
	}
	return nil
}

// wholeENIs is, in exclusive mode, the node's ENIs as the pool sees them: their primary address only. An ENI
// left with secondary addresses by shared mode (the node switched) keeps them in the cloud, unused: an exclusive
// pod takes the whole ENI, whose address is its primary.
func (n *Network) wholeENIs(list []aliyun.ENI) []aliyun.ENI {
	if !n.exclusive {
		return list
	}
	out := make([]aliyun.ENI, len(list))
	for i, e := range list {
		e.Secondary = nil
		out[i] = e
	}
	return out
}

// checkModeSwitch refuses exclusive mode on a node whose checkpoint still holds shared pods (addresses that are
// not their ENI's primary): drain the node before switching its mode.
func (n *Network) checkModeSwitch(recs []checkpoint.Record, enis []aliyun.ENI) error {
	if !n.exclusive {
		return nil
	}
	return sharedPodsLeft(recs, enis)
}

// sharedPodsLeft: the Assigned records whose address is not the primary of an ENI, as an error naming them.
func sharedPodsLeft(recs []checkpoint.Record, enis []aliyun.ENI) error {
	primary := map[string]netip.Addr{}
	for _, e := range enis {
		primary[e.ID] = e.PrimaryIP
	}
	var shared []string
	for _, r := range recs {
		if r.State == checkpoint.Assigned && primary[r.ENI] != r.IP {
			shared = append(shared, fmt.Sprintf("%s/%s (%s on %s)", r.PodNamespace, r.PodName, r.IP, r.ENI))
		}
	}
	if len(shared) == 0 {
		return nil
	}
	if len(shared) > 5 {
		shared = append(shared[:5], fmt.Sprintf("and %d more", len(shared)-5))
	}
	return fmt.Errorf("eni: exclusive ENI mode, but the node still runs pods on shared ENI addresses: %s; drain the node before switching its mode (%s or Backend.Mode)",
		strings.Join(shared, ", "), LabelENIMode)
}
