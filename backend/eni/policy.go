package eni

import (
	"context"
	"net/netip"

	"github.com/weftnet/weft/internal/eni/cniproto"
)

// waitPolicy holds a shared-mode ADD's answer until the NetworkPolicy engine (backend.Deps.Policy, when weftd runs
// one) has the pod's rules in the kernel for its addresses, so the pod starts isolated. An exclusive pod's ENI sits
// in its own namespace, outside the host's policy hook: nothing to wait for.
func (n *Network) waitPolicy(ctx context.Context, namespace, name string, r cniproto.AddReply) error {
	pw := n.d.deps.Policy
	if pw == nil || n.exclusive {
		return nil
	}
	ips := []netip.Addr{r.IP}
	if r.IPv6.IsValid() {
		ips = append(ips, r.IPv6)
	}
	if err := pw.Ensure(ctx, namespace, name, ips); err != nil {
		return protoErr(cniproto.CodeNotReady, "ADD %s/%s: %v", namespace, name, err)
	}
	return nil
}
