package eni

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/internal/eni/checkpoint"
	"github.com/weftnet/weft/internal/eni/datapath"
	"github.com/weftnet/weft/internal/eni/pool"
)

// The node's ENIs: read from the cloud, set up on the host by MAC, and the vSwitches they come from.

// ownENIs lists the ENIs this node may use: attached to this instance (or left Available by an attach that did
// not complete) and carrying this cluster's tag.
func (n *Network) ownENIs(ctx context.Context) ([]aliyun.ENI, error) {
	list, err := n.d.cloud.ENIs(ctx, aliyun.ENIFilter{Tags: map[string]string{TagCluster: n.cfg.ClusterID, TagInstance: n.instance}})
	n.cloudResult("DescribeNetworkInterfaces", err)
	if err != nil {
		return nil, fmt.Errorf("eni: list this node's ENIs: %w", err)
	}
	return n.wholeENIs(list), nil // exclusive.go
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
	list = trunksFirst(list) // trunk.go: its members are usable once it is
	for _, e := range list {
		seen[e.ID] = true
		st := n.setUp(ctx, e)
		n.mu.Lock()
		if inPool(e) { // not the trunk ENI (trunk.go)
			view = append(view, poolENI(e, st.usable)) // podnet.go
		}
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
		if inPool(st.ENI) { // not the trunk ENI (trunk.go)
			view = append(view, poolENI(st.ENI, st.usable)) // podnet.go
		}
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
			attach := n.attachSlot // trunk.go: ordinary or a trunk member
			if e.Type == typeTrunk {
				attach = n.attach
			}
			if err := attach(ctx, e.ID); err != nil {
				why = err.Error()
			}
		}
		why = "detached"
		return st
	default:
		why = e.Status
		return st
	}
	if isMember(e) { // trunk.go: no NIC of its own, its link is made on the trunk for its pod
		usable, why = n.memberUsable(ctx, st, e, sw)
		gone = !usable
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
	if err != nil && n.heldENIs()[e.ID] {
		// Exclusive mode: the ENI is inside its pod's namespace, where the plugin moved it (exclusive.go).
		usable, gone = true, false
		if gw := n.gateway(ctx, e.MAC, sw.CIDR); gw.IsValid() {
			n.mu.Lock()
			st.gateway, st.cidr = gw, sw.CIDR
			n.mu.Unlock()
		}
		n.heldIPv6(ctx, st, sw) // exclusive_dual.go
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
	if err := n.setUpIPv6(ctx, st, sw, idx); err != nil { // dual.go
		why = err.Error()
		return st
	}
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

// candidateVSwitches are the vSwitches of the list (the zone's, or a pod class's: podnet.go) not marked
// exhausted, in the configured policy's order.
func (n *Network) candidateVSwitches(list []string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	var out []string
	for _, id := range list {
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
func (n *Network) refilled(need int, list []string) []string {
	n.mu.Lock()
	for _, id := range list {
		if sw, ok := n.vswitches[id]; ok && sw.Available >= need && !n.exhausted[id].IsZero() {
			klog.Infof("eni: vSwitch %s has %d free addresses again", id, sw.Available)
			delete(n.exhausted, id)
		}
	}
	n.mu.Unlock()
	return n.candidateVSwitches(list)
}
