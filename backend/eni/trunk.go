package eni

// Trunk member ENIs (Terway's enable_eni_trunking), exclusive mode only: exclusive pods beyond the instance's ENI
// slots go on member ENIs of one trunk ENI.
//
// The node's agent creates one trunk ENI (CreateNetworkInterface InstanceType=Trunk, tagged as its other ENIs,
// attached as any ENI) when it first needs a member, and adopts it after a restart (ownENIs lists it). The trunk
// is set up on the host by its MAC like any ENI (up, rp_filter, its table) but never shown to the pool: no pod
// gets it, and it is never moved. A member ENI is an ordinary Secondary ENI attached with AttachMemberENI to the
// trunk; the cloud reports it with Type Member, its trunk and its VLAN id. It has no NIC of its own: the plugin
// makes its link on the trunk's interface (datapath.EnsureMemberLink: an 802.1Q sub-interface by default, a
// macvlan with trunk_link "macvlan", which alisim's fabric needs) right before moving it into the pod, and
// removes it when the pod gives the ENI back. The pool counts a member as any exclusive ENI (one address, its
// primary); the agent decides, when it makes the next ENI, whether it is ordinary or a member (nextSlot).
//
// Capacity: the trunk ENI takes one of the EniQuantity slots, so a trunk node holds EniQuantity - 2 ordinary
// exclusive ENIs plus EniTotalQuantity - EniQuantity members (TrunkLimits; weft plan's exclusive-trunk figure,
// instancetype.Type.ExclusiveTrunkPods). The node advertises them all as aliyun/eni: one pod asks for one
// exclusive ENI whichever kind it gets, so a second resource (Terway's aliyun/member-eni) would only make pods
// choose a kind they cannot tell apart in weft.
//
// Refused: enable_eni_trunking on a type without trunking (naming the type), and in shared mode (naming Mode: a
// member ENI is a whole ENI, which only exclusive pods take).

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"k8s.io/klog/v2"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/instancetype"
	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/pool"
)

// The values of trunk_link.
const (
	TrunkLinkVLAN    = cniproto.TrunkLinkVLAN
	TrunkLinkMACVLAN = cniproto.TrunkLinkMACVLAN
)

// The ENI types the cloud reports (aliyun.ENI.Type).
const (
	typeTrunk  = "Trunk"
	typeMember = "Member"
)

// TrunkCloud is what the agent needs of the cloud for member ENIs; cloud/aliyun's Client implements it.
type TrunkCloud interface {
	AttachMemberENI(ctx context.Context, instanceID, trunkID, eniID string) error
}

// parseTrunkingKey reads enable_eni_trunking: a JSON boolean.
func parseTrunkingKey(c *Config, raw json.RawMessage) error {
	if string(raw) != "true" && string(raw) != "false" {
		return cfgKeyErr("enable_eni_trunking", raw, "true or false")
	}
	c.EnableENITrunking = string(raw) == "true"
	return nil
}

// parseTrunkLinkKey reads trunk_link: "vlan" (the service's 802.1Q trunking) or "macvlan" (alisim's fabric).
func parseTrunkLinkKey(c *Config, raw json.RawMessage) error {
	s, err := cfgString("trunk_link", raw)
	if err == nil && s != TrunkLinkVLAN && s != TrunkLinkMACVLAN {
		err = cfgKeyErr("trunk_link", raw, fmt.Sprintf("%q (802.1Q, the service's trunking) or %q (alisim's fabric)", TrunkLinkVLAN, TrunkLinkMACVLAN))
	}
	c.TrunkLink = s
	return err
}

// TrunkCheck refuses enable_eni_trunking on a node of instance type t that does not support trunking, naming the
// type.
func TrunkCheck(enabled bool, t instancetype.Type) error {
	if enabled && !t.TrunkSupported {
		return fmt.Errorf("Backend.enable_eni_trunking: true, but instance type %s does not support ENI trunking "+
			"(DescribeInstanceTypes: EniTrunkSupported false, so no member ENIs): set it false for nodes of this type", t.ID)
	}
	return nil
}

// TrunkModeCheck refuses enable_eni_trunking on a node that runs shared mode: a member ENI is a whole ENI, which
// only exclusive pods take.
func TrunkModeCheck(enabled bool, mode string) error {
	if enabled && mode != ModeExclusive {
		return fmt.Errorf("Backend.enable_eni_trunking: true, but this node runs Mode %q: trunk member ENIs are whole ENIs "+
			"for exclusive pods; set Backend.Mode (or the node label %s) to %q, or enable_eni_trunking false", mode, LabelENIMode, ModeExclusive)
	}
	return nil
}

// TrunkLimits are the pool's limits on an exclusive node with trunking: EniQuantity - 2 ordinary ENIs (the
// primary and the trunk take a slot each) plus the type's member ENIs, one address each.
func TrunkLimits(t instancetype.Type) pool.Limits {
	m := t.TrunkPods()
	return pool.Limits{InstanceType: t.ID, ENIs: max(t.ENIs-2, 0) + m, AddrsPerENI: 1, Exclusive: true, Members: m}
}

// The kinds of ENI slot nextSlot chooses.
const (
	slotOrdinary = "ordinary" // an ENI attached to the instance
	slotTrunk    = "trunk"    // the trunk ENI first (none yet), then a member
	slotMember   = "member"   // a member ENI on the trunk
)

// nextSlot decides what the next ENI of an exclusive node is: ordinary until the ordinary slots are full, then a
// member (the trunk made first when there is none); an error when the members are full too.
func nextSlot(l pool.Limits, trunking bool, ordinary, members int, haveTrunk bool) (string, error) {
	switch {
	case !trunking || ordinary < l.Ordinary():
		return slotOrdinary, nil
	case members >= l.Members:
		return "", fmt.Errorf("no ENI slot left: %d ordinary ENIs and %d of %d trunk member ENIs in use", ordinary, members, l.Members)
	case !haveTrunk:
		return slotTrunk, nil
	}
	return slotMember, nil
}

func isMember(e aliyun.ENI) bool { return e.Type == typeMember || e.TrunkID != "" }

// slots counts the node's ordinary ENIs and members and finds its trunk; n.mu held.
func (n *Network) slots() (ordinary, members int, trunk *eniState) {
	for _, e := range n.enis {
		switch {
		case e.Type == typeTrunk:
			trunk = e
		case isMember(e.ENI):
			members++
		default:
			ordinary++
		}
	}
	return ordinary, members, trunk
}

// inPool says whether the pool sees an ENI: every one but the trunk.
func inPool(e aliyun.ENI) bool { return e.Type != typeTrunk }

// attachSlot attaches an Available ENI of this node where nextSlot says, making the trunk first when needed.
func (n *Network) attachSlot(ctx context.Context, id string) error {
	n.mu.Lock()
	ordinary, members, trunk := n.slots()
	if st := n.enis[id]; st != nil && !isMember(st.ENI) && st.Type != typeTrunk {
		ordinary-- // counted already: it is the one being attached
	}
	trunkID, trunkUp := "", false
	if trunk != nil {
		trunkID, trunkUp = trunk.ID, trunk.Status == "InUse"
	}
	n.mu.Unlock()
	slot, err := nextSlot(n.limits, n.trunking, ordinary, members, trunkID != "")
	if err != nil {
		return fmt.Errorf("attach %s: %w", id, err)
	}
	switch slot {
	case slotOrdinary:
		return n.attach(ctx, id)
	case slotTrunk:
		if trunkID, err = n.createTrunk(ctx); err != nil {
			return err
		}
	case slotMember:
		if !trunkUp {
			return fmt.Errorf("attach %s as a trunk member: the trunk ENI %s is not InUse yet", id, trunkID)
		}
	}
	return n.attachMember(ctx, trunkID, id)
}

// createTrunk creates and attaches the node's trunk ENI, in the first usable vSwitch of the zone.
func (n *Network) createTrunk(ctx context.Context) (string, error) {
	tags := n.eniTags()
	var errs error
	for _, sw := range n.candidateVSwitches(n.cfg.VSwitchesFor(n.zone)) {
		e, err := n.d.cloud.CreateENI(ctx, aliyun.NewENI{VSwitchID: sw, SecurityGroupIDs: n.cfg.SecurityGroups, Tags: tags, Trunk: true,
			Description: "weft trunk ENI of node " + n.d.deps.NodeName})
		n.cloudResult("CreateNetworkInterface", err)
		if err != nil {
			if aliyun.IsVSwitchExhausted(err) {
				n.markExhausted(ctx, sw, err)
				errs = err
				continue
			}
			return "", fmt.Errorf("create the trunk ENI in %s: %w", sw, err)
		}
		n.d.m.calls.WithLabelValues("CreateNetworkInterface").Inc()
		klog.Infof("eni: created the trunk ENI %s (%s) in %s", e.ID, e.MAC, sw)
		if err := n.attach(ctx, e.ID); err != nil {
			return "", fmt.Errorf("the trunk ENI: %w", err)
		}
		n.mu.Lock()
		n.enis[e.ID] = &eniState{ENI: aliyun.ENI{ID: e.ID, MAC: e.MAC, Type: typeTrunk, Status: "InUse", InstanceID: n.instance, VSwitchID: sw}}
		n.mu.Unlock()
		return e.ID, nil
	}
	return "", fmt.Errorf("create the trunk ENI: no vSwitch of zone %s has free addresses: %v", n.zone, errs)
}

// attachMember attaches an Available ENI as a member of the trunk and waits (at most a minute) until it is InUse;
// an ENI that cannot be attached is deleted again.
func (n *Network) attachMember(ctx context.Context, trunkID, id string) error {
	tc, ok := n.d.cloud.(TrunkCloud)
	if !ok {
		return fmt.Errorf("attach %s as a trunk member: this cloud client cannot attach member ENIs", id)
	}
	err := tc.AttachMemberENI(ctx, n.instance, trunkID, id)
	n.cloudResult("AttachNetworkInterface", err)
	if err != nil {
		if derr := n.d.cloud.DeleteENI(ctx, id); derr != nil {
			klog.Warningf("eni: delete %s after its failed member attach: %v (the ENI collector removes it later)", id, derr)
		}
		return fmt.Errorf("attach %s as a member of the trunk ENI %s: %w", id, trunkID, err)
	}
	n.d.m.calls.WithLabelValues("AttachNetworkInterface").Inc()
	if err := n.waitInUse(ctx, id); err != nil {
		return err
	}
	klog.Infof("eni: attached %s as a member of the trunk ENI %s", id, trunkID)
	return nil
}

// waitInUse waits (at most a minute) until the API says the ENI is InUse.
func (n *Network) waitInUse(ctx context.Context, id string) error {
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

// memberUsable says whether a member ENI (InUse) can serve a pod, and why not: its trunk is this node's and
// usable on the host. Its gateway and block are its vSwitch's; it has no host link or table of its own.
func (n *Network) memberUsable(ctx context.Context, st *eniState, e aliyun.ENI, sw aliyun.VSwitch) (bool, string) {
	n.mu.Lock()
	trunk := n.enis[e.TrunkID]
	up := trunk != nil && trunk.Type == typeTrunk && trunk.usable
	n.mu.Unlock()
	switch {
	case !n.trunking:
		return false, "a trunk member ENI, and enable_eni_trunking is false"
	case e.InstanceID != n.instance:
		return false, "a member on instance " + e.InstanceID
	case !up:
		return false, "its trunk ENI " + e.TrunkID + " is not usable on the host"
	case !sw.CIDR.IsValid():
		return false, "its vSwitch " + e.VSwitchID + " is unknown"
	}
	gw := n.gateway(ctx, e.MAC, sw.CIDR)
	n.mu.Lock()
	st.gateway, st.cidr = gw, sw.CIDR
	n.mu.Unlock()
	return true, ""
}

// trunkReply completes an exclusive ADD reply for a member ENI: its trunk's MAC, its VLAN id, the link kind.
func (n *Network) trunkReply(r *cniproto.AddReply, e *eniState) error {
	if !isMember(e.ENI) {
		return nil
	}
	n.mu.Lock()
	var trunk eniState
	if t := n.enis[e.TrunkID]; t != nil {
		trunk = *t // a copy, as reply's
	}
	n.mu.Unlock()
	if trunk.MAC == "" || !trunk.usable {
		return protoErr("NotReady", "member ENI %s: its trunk ENI %s is not usable on this node", e.ID, e.TrunkID)
	}
	r.ENI.Trunk = &cniproto.TrunkInfo{MAC: trunk.MAC, VLAN: e.VLAN, Link: n.cfg.TrunkLink}
	r.MTU = n.mtu(&trunk) // the member's link takes its trunk's
	return nil
}

// trunksFirst orders the trunk ENIs before the others (a copy), so that setting up a member finds its trunk set up.
func trunksFirst(list []aliyun.ENI) []aliyun.ENI {
	out := make([]aliyun.ENI, 0, len(list))
	for _, e := range list {
		if e.Type == typeTrunk {
			out = append(out, e)
		}
	}
	for _, e := range list {
		if e.Type != typeTrunk {
			out = append(out, e)
		}
	}
	return out
}
