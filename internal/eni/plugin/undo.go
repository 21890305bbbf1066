package plugin

import (
	"context"
	"net/netip"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/weftnet/weft/internal/eni/cniproto"
)

// addUndo is ADD's rollback, shared by the shared and the exclusive datapath: once weftd holds an address for the
// pod, a failed ADD removes the state file and what the datapath built (when it built anything), then gives the
// address back to weftd. A standing datapath (a second ADD without DEL) is left alone with its address. Call
// run from a deferred function with ADD's named error, so no early return skips it.
type addUndo struct {
	p    *Plugin
	args *skel.CmdArgs
	c    *cniproto.Client
	id   cniproto.PodID
	ip   netip.Addr
	sp   string // the state file
	// datapath undoes what the datapath built; nil while it built nothing (set once it did).
	datapath func() error
	// standing: the pod's datapath was there before this ADD and its address stays held.
	standing bool
}

func (u *addUndo) run(err error) {
	if err == nil || u.standing {
		return
	}
	if u.datapath != nil {
		if rerr := removeState(u.sp); rerr != nil {
			u.p.warnf("ADD %s: %v", u.args.ContainerID, rerr)
		}
		if derr := u.datapath(); derr != nil {
			u.p.warnf("ADD %s: undo the datapath: %v", u.args.ContainerID, derr)
		}
	}
	if derr := u.c.Del(context.Background(), cniproto.DelRequest{Pod: u.id, IP: u.ip}); derr != nil {
		u.p.warnf("ADD %s: give %v back to weftd: %v (weftd's GC frees it later)", u.args.ContainerID, u.ip, derr)
	}
}
