package plugin

// Exclusive ENI mode: weftd's ADD reply says Mode exclusive, and the plugin moves the whole ENI into the pod
// (datapath.AddExclusive) instead of building a veth on a shared ENI. The state file records the ENI (MAC,
// gateway, host routes) for CHECK; DEL brings the ENI back to the host before the shared teardown (which removes
// the host veth and the rules), and does so whether or not a state file or prevResult says exclusive: the ENI is
// found in the pod by the alias AddExclusive gave it.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/weftnet/weft/internal/bandwidth"
	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/datapath"
)

// ExclusiveDatapath is the exclusive mode's datapath; Netlink implements it. A Datapath without it refuses
// exclusive pods.
type ExclusiveDatapath interface {
	AddExclusive(p datapath.ExclusivePod) (datapath.ExclusiveResult, error)
	// ReturnENI brings an ENI moved into the pod back to the host (nothing when there is none, or no netns).
	ReturnENI(p datapath.ExclusivePod) error
	CheckExclusive(p datapath.ExclusivePod) error
}

func (Netlink) AddExclusive(p datapath.ExclusivePod) (datapath.ExclusiveResult, error) {
	return datapath.AddExclusive(p)
}

// ReturnENI moves the ENI back only (datapath.DelExclusive also does Del's part, which the plugin's DEL does
// with the pod's own rule priorities).
func (Netlink) ReturnENI(p datapath.ExclusivePod) error { return datapath.ReturnENI(p) }

func (Netlink) CheckExclusive(p datapath.ExclusivePod) error { return datapath.CheckExclusive(p) }

// exclusiveState is what CHECK needs of an exclusive pod beyond state.
type exclusiveState struct {
	MAC        string
	Gateway    netip.Addr
	HostRoutes []netip.Prefix `json:",omitempty"`
	// Member: the ENI is a trunk member ENI, whose link on the trunk DEL removes once it is back (trunk.go).
	Member      bool `json:",omitempty"`
	exclusiveV6      // dual stack (exclusive_dual.go)
}

func exclusivePod(args *skel.CmdArgs, ip netip.Addr, mtu int, x *exclusiveState) datapath.ExclusivePod {
	p := datapath.ExclusivePod{ContainerID: args.ContainerID, Netns: args.Netns, IfName: args.IfName, IP: ip, MTU: mtu}
	if x != nil {
		p.MAC, _ = net.ParseMAC(x.MAC)
		p.Gateway, p.HostRoutes = x.Gateway, x.HostRoutes
		x.exclusiveV6.apply(&p)
	}
	return p
}

// addExclusive is ADD's datapath part in exclusive mode; weftd holds the ENI's address already, and every failure
// gives it back.
func (p *Plugin) addExclusive(args *skel.CmdArgs, conf *Conf, c *cniproto.Client, id cniproto.PodID, reply cniproto.AddReply) (err error) {
	xd, ok := p.Datapath.(ExclusiveDatapath)
	x := &exclusiveState{MAC: reply.ENI.MAC, Gateway: reply.ENI.Gateway, HostRoutes: reply.HostRoutes, Member: reply.ENI.Trunk != nil,
		exclusiveV6: exclusiveV6Of(reply)}
	pod := exclusivePod(args, reply.IP, reply.MTU, x)
	pod.Bandwidth = conf.bandwidth // bandwidth.go
	sp := statePath(conf.DataDir, args.ContainerID, args.IfName)
	undo := &addUndo{p: p, args: args, c: c, id: id, ip: reply.IP, sp: sp} // undo.go
	defer func() { undo.run(err) }()
	if !ok {
		return types.NewError(types.ErrInternal, "ADD: weftd answered an exclusive ENI, which this plugin's datapath cannot build", "")
	}
	if reply.ENI.Trunk != nil { // trunk.go: the member's link on the trunk, which AddExclusive moves
		if err := p.ensureMemberLink(reply, undo); err != nil {
			return err
		}
	}
	res, err := xd.AddExclusive(pod)
	if errors.Is(err, datapath.ErrExists) {
		undo.standing = true
		if undo.datapath != nil { // a member link made for nothing: the standing pod has its own
			if derr := undo.datapath(); derr != nil {
				p.warnf("ADD %s: remove the member link made for a standing pod: %v", args.ContainerID, derr)
			}
		}
		return types.NewError(types.ErrInternal, fmt.Sprintf("ADD: container %s interface %s already has its datapath (%v): "+
			"a second ADD without DEL; DEL it first (its ENI stays held)", args.ContainerID, args.IfName, err), "")
	}
	if err != nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("ADD: the exclusive ENI %s (%v): %v", reply.ENI.ID, reply.IP, err), "")
	}
	memberLink := undo.datapath // the member link's removal, or nil
	undo.datapath = func() error {
		err := errors.Join(xd.ReturnENI(pod), p.Datapath.Del(datapathPod(args, reply.IP, reply)))
		if err == nil && memberLink != nil {
			err = memberLink() // only once the ENI is back on the host
		}
		return err
	}
	rules := datapathPod(args, reply.IP, reply).Rules
	if err := saveState(sp, state{IP: reply.IP, Table: reply.Table, MTU: pod.MTU, Rules: rules, Bandwidth: conf.stateBandwidth(), Exclusive: x}); err != nil {
		return types.NewError(types.ErrIOFailure, "ADD: keep the pod's datapath for DEL and CHECK: "+err.Error(), "")
	}
	out, err := exclusiveResult(conf.CNIVersion, args, reply, res).GetAsVersion(conf.CNIVersion)
	if err != nil {
		return types.NewError(types.ErrInternal, "ADD: the result: "+err.Error(), "")
	}
	if err := out.PrintTo(p.stdout()); err != nil {
		return types.NewError(types.ErrIOFailure, "ADD: print the result: "+err.Error(), "")
	}
	return nil
}

// exclusiveResult: the host veth, the pod's interface (the ENI, its MAC), the second veth; IP/32 via the
// vSwitch gateway on the ENI; the default route via the gateway.
func exclusiveResult(cniVersion string, args *skel.CmdArgs, reply cniproto.AddReply, r datapath.ExclusiveResult) *current.Result {
	gw := net.IP(reply.ENI.Gateway.AsSlice())
	podIf := 1
	res := &current.Result{
		CNIVersion: cniVersion,
		Interfaces: []*current.Interface{
			{Name: r.HostVeth, Mac: r.HostMAC.String()},
			{Name: args.IfName, Mac: r.PodMAC.String(), Sandbox: args.Netns},
			{Name: datapath.ExclusiveVeth, Mac: r.PodVethMAC.String(), Sandbox: args.Netns},
		},
		IPs: []*current.IPConfig{{
			Interface: &podIf,
			Address:   net.IPNet{IP: net.IP(reply.IP.AsSlice()), Mask: net.CIDRMask(32, 32)},
			Gateway:   gw,
		}},
		Routes: []*types.Route{{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, GW: gw}},
	}
	addExclusiveIPv6Result(res, reply) // exclusive_dual.go
	return res
}

// returnENI is DEL's first step: an ENI in the pod goes back to the host. Without ExclusiveDatapath, nothing.
func (p *Plugin) returnENI(args *skel.CmdArgs, st state) error {
	xd, ok := p.Datapath.(ExclusiveDatapath)
	if !ok {
		return nil
	}
	if args.Netns != "" {
		if err := xd.ReturnENI(exclusivePod(args, st.IP, st.MTU, st.Exclusive)); err != nil {
			return err
		}
	}
	return p.deleteMemberLink(st.Exclusive) // trunk.go
}

// checkExclusive is CHECK's datapath part for an exclusive pod.
func (p *Plugin) checkExclusive(args *skel.CmdArgs, st state, bw bandwidth.Limits) error {
	xd, ok := p.Datapath.(ExclusiveDatapath)
	if !ok {
		return errors.New("this plugin's datapath cannot check an exclusive ENI")
	}
	pod := exclusivePod(args, st.IP, st.MTU, st.Exclusive)
	pod.Bandwidth = bw
	return xd.CheckExclusive(pod)
}
