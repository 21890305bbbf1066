package eni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/internal/eni/checkpoint"
	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/pool"
)

// serve answers the CNI plugin on the unix socket until ctx ends. A socket that cannot be made (its path a
// directory, its directory read-only) is retried, and the node is not ready meanwhile: /readyz says why instead
// of 200 while every pod's ADD fails.
func (n *Network) serve(ctx context.Context) {
	for {
		ln, err := cniproto.Listen(n.cfg.Socket)
		n.mu.Lock()
		n.socketErr = ""
		if err != nil {
			n.socketErr = fmt.Sprintf("CNI socket %s: %v", n.cfg.Socket, err)
		}
		n.mu.Unlock()
		if err == nil {
			err = cniproto.ServeListener(ctx, ln, n)
		}
		if ctx.Err() != nil {
			return
		}
		klog.Errorf("eni: CNI socket %s: %v (retrying in 5s)", n.cfg.Socket, err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

var _ cniproto.Handler = (*Network)(nil)

func protoErr(code, format string, args ...any) error {
	return &cniproto.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Add gives the pod an address: the same one again for a retried ADD, else an idle one, waiting (within the
// request's deadline) while the pool fills. The allocation is checkpointed before this returns.
func (n *Network) Add(ctx context.Context, r cniproto.AddRequest) (cniproto.AddReply, error) {
	start := time.Now()
	info, err := n.checkPod(ctx, r.Pod.Namespace, r.Pod.Name)
	if err != nil {
		return cniproto.AddReply{}, err
	}
	class, err := n.podClass(ctx, info) // per-pod vSwitches and security groups: podnet.go
	if err != nil {
		return cniproto.AddReply{}, err
	}
	pod := pool.Pod{ContainerID: r.Pod.ContainerID, Netns: r.Pod.Netns, IfName: r.Pod.IfName, Namespace: r.Pod.Namespace, Name: r.Pod.Name,
		Reserve: info.Reserve, StatefulSet: info.StatefulSet, Class: class} // fixed addresses: reserve.go
	for {
		changed := n.pool.Changed()
		a, err := n.pool.Allocate(pod)
		var limit *pool.LimitError
		switch {
		case err == nil:
			reply, rerr := n.reply(a)
			if rerr == nil {
				rerr = n.waitPolicy(ctx, pod.Namespace, pod.Name, reply) // policy.go
			}
			if rerr != nil {
				// The ENI went away between the allocation and now, or the pod's policy rules are not in place:
				// give the address back.
				_, _, _ = n.pool.Release(pod.ContainerID, pod.IfName)
				return cniproto.AddReply{}, rerr
			}
			n.d.m.allocSeconds.Observe(time.Since(start).Seconds())
			klog.V(2).Infof("eni: %s/%s (%s) gets %s on %s in %s", pod.Namespace, pod.Name, short(pod.ContainerID), a.IP, a.ENI.ID, time.Since(start).Round(time.Millisecond))
			return reply, nil
		case errors.As(err, &limit):
			n.d.events.Eventf("Warning", "PodAddressLimit", "pod %s/%s: %v", pod.Namespace, pod.Name, err)
			return cniproto.AddReply{}, protoErr("Limit", "%v", err)
		case errors.Is(err, pool.ErrNoIdle):
			n.poke()
		default:
			return cniproto.AddReply{}, protoErr("Internal", "allocate an address: %v", err)
		}
		select {
		case <-ctx.Done():
			n.pool.Abandon(pod.ContainerID, pod.IfName)
			_, why := n.Ready()
			if why == "" {
				n.mu.Lock()
				why = n.cloudErr
				if n.state != "" {
					why = n.state + ": " + n.stateMsg
				}
				n.mu.Unlock()
			}
			return cniproto.AddReply{}, protoErr("NotReady", "no address became free within the deadline (%s)%s", time.Since(start).Round(time.Second), suffix(why))
		case <-changed:
		}
	}
}

func suffix(why string) string {
	if why == "" {
		return ""
	}
	return ": " + why
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// checkPod refuses an ADD for a pod the API does not have on this node (an address handed to it would be
// collected as an orphan), and returns what the backend keeps of the pod.
func (n *Network) checkPod(ctx context.Context, ns, name string) (PodInfo, error) {
	if ns == "" || name == "" {
		return PodInfo{}, protoErr("BadRequest", "K8S_POD_NAMESPACE and K8S_POD_NAME are required in CNI_ARGS (the eni backend gives addresses to Kubernetes pods only)")
	}
	if info, ok := n.d.pods.Get(ns, name); ok { // the informer lists this node's pods only
		return info, nil
	}
	p, err := n.d.deps.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return PodInfo{}, protoErr("BadRequest", "pod %s/%s does not exist", ns, name)
	case err != nil:
		return PodInfo{}, protoErr("NotReady", "read pod %s/%s: %v", ns, name, err)
	case p.Spec.NodeName != n.d.deps.NodeName:
		return PodInfo{}, protoErr("BadRequest", "pod %s/%s is scheduled on node %q, not %s", ns, name, p.Spec.NodeName, n.d.deps.NodeName)
	}
	return podInfo(p), nil
}

func (n *Network) reply(a pool.Allocation) (cniproto.AddReply, error) {
	n.mu.Lock()
	var c eniState
	p := n.enis[a.ENI.ID]
	if p != nil {
		c = *p // a copy: setUp rewrites the fields under n.mu while the ENI is refreshed
	}
	n.mu.Unlock()
	e := &c
	if p == nil || !e.usable {
		return cniproto.AddReply{}, protoErr("NotReady", "ENI %s of address %s is not usable on the host", a.ENI.ID, a.IP)
	}
	r := cniproto.AddReply{Version: cniproto.Version, IP: a.IP, Table: e.table, MTU: n.mtu(e),
		ENI: cniproto.ENIInfo{ID: e.ID, MAC: e.MAC, VSwitchCIDR: e.cidr, Gateway: e.gateway}, ServiceCIDR: n.cfg.ServiceCIDR}
	r.Rules.ToPod, r.Rules.FromPod = n.cfg.RulePriorityToPod, n.cfg.RulePriorityFromPod
	n.exclusiveReply(&r, e)                     // exclusive.go
	if err := n.trunkReply(&r, e); err != nil { // trunk.go
		return cniproto.AddReply{}, err
	}
	if err := dualReply(&r, a, e); err != nil { // dual.go
		return cniproto.AddReply{}, err
	}
	n.exclusiveDualReply(&r) // exclusive_dual.go
	return r, nil
}

func (n *Network) mtu(e *eniState) int {
	if n.cfg.MTU > 0 {
		return n.cfg.MTU
	}
	if l, err := n.d.host.LinkByMAC(mustMAC(e.MAC)); err == nil && l.Attrs().MTU > 0 {
		return l.Attrs().MTU
	}
	return 1500
}

// Del releases the pod's address (into its cooldown); an unknown pod is not an error (DEL is idempotent).
func (n *Network) Del(_ context.Context, r cniproto.DelRequest) error {
	ip, ok, err := n.pool.Release(r.Pod.ContainerID, r.Pod.IfName)
	if err != nil {
		return protoErr("Internal", "release the address of %s: %v", short(r.Pod.ContainerID), err)
	}
	if ok {
		klog.V(2).Infof("eni: %s/%s (%s) released %s", r.Pod.Namespace, r.Pod.Name, short(r.Pod.ContainerID), ip)
	}
	return nil
}

// Check: weftd holds the address the runtime remembers for the pod.
func (n *Network) Check(_ context.Context, r cniproto.CheckRequest) error {
	rec, ok := n.pool.Lookup(r.Pod.ContainerID, r.Pod.IfName)
	switch {
	case !ok:
		return protoErr("BadRequest", "weftd holds no address for container %s interface %s", short(r.Pod.ContainerID), r.Pod.IfName)
	case rec.State != checkpoint.Assigned:
		return protoErr("BadRequest", "the address %s of container %s is %s: %s", rec.IP, short(r.Pod.ContainerID), rec.State, rec.Reason)
	case r.IP.IsValid() && r.IP != rec.IP:
		return protoErr("BadRequest", "container %s holds %s, not %s", short(r.Pod.ContainerID), rec.IP, r.IP)
	}
	return nil
}

// Status: ready when an address can be served.
func (n *Network) Status(context.Context) error {
	if ok, why := n.Ready(); !ok {
		return protoErr("NotReady", "%s", why)
	}
	return nil
}

// gcMinAge keeps a just-made allocation from being collected while its ADD is still under way.
const gcMinAge = time.Minute

// GC (CNI 1.1): addresses of attachments the runtime no longer knows are released.
func (n *Network) GC(_ context.Context, r cniproto.GCRequest) error {
	valid := map[[2]string]bool{}
	for _, a := range r.Valid {
		valid[[2]string{a.ContainerID, a.IfName}] = true
	}
	now := n.d.clock.Now()
	for _, rec := range n.pool.Records() {
		if rec.State != checkpoint.Assigned || valid[[2]string{rec.ContainerID, rec.IfName}] || now.Sub(rec.AssignedAt) < gcMinAge {
			continue
		}
		if _, ok, err := n.pool.Release(rec.ContainerID, rec.IfName); err == nil && ok {
			klog.Infof("eni: CNI GC: released %s of %s/%s (container %s no longer known to the runtime)", rec.IP, rec.PodNamespace, rec.PodName, short(rec.ContainerID))
		}
	}
	return nil
}

func mustMAC(s string) net.HardwareAddr {
	m, _ := net.ParseMAC(s)
	return m
}
