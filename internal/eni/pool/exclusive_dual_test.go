package pool

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// Exclusive dual stack (Limits.Exclusive with IPv6PerENI 1): the capacity stays the ENIs, a new ENI is asked for
// with one IPv6 address, an adopted ENI without one gets one assigned (and no pod before), a pod takes the ENI's
// primary with its IPv6 address, and more than one IPv6 address per exclusive ENI is refused.
func TestExclusiveDualPool(t *testing.T) {
	cfg := testConfig()
	cfg.MinIdle, cfg.TargetIdle, cfg.MaxIdle = 1, 1, 1
	cfg.Limits = Limits{InstanceType: "ecs.e2e.eni3", ENIs: 2, AddrsPerENI: 1, Exclusive: true, IPv6PerENI: 1}
	if got := cfg.Limits.Pods(); got != 2 {
		t.Fatalf("Pods %d, want 2 (EniQuantity - 1)", got)
	}
	if got := cfg.Limits.NewENIIPv6(0); got != 1 {
		t.Fatalf("NewENIIPv6(0) %d, want 1", got)
	}
	bad := cfg
	bad.Limits.IPv6PerENI = 2
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "want IPv6PerENI 0 or 1") {
		t.Fatalf("IPv6PerENI 2 in exclusive mode: %v", err)
	}
	p, _, _ := newPool(t, cfg)
	if pl := p.Plan(); !pl.CreateWhole {
		t.Fatalf("plan %+v, want CreateWhole", pl)
	}
	p.SetENIs([]ENI{eni(1, 1)}) // adopted without an IPv6 address
	if _, err := p.Allocate(pod(1)); !errors.Is(err, ErrNoIdle) {
		t.Fatalf("pod on an ENI without IPv6: %v, want ErrNoIdle", err)
	}
	pl := p.Plan()
	if len(pl.AssignIPv6) != 1 || pl.AssignIPv6[0].ENI != "eni-1" || pl.AssignIPv6[0].N != 1 || len(pl.Assign) != 0 {
		t.Fatalf("plan %+v, want one IPv6 address assigned to eni-1", pl)
	}
	p.AssignedIPv6("eni-1", []netip.Addr{ip6(1, 1)})
	a := mustAllocate(t, p, pod(1))
	if a.IP != ip(1, 1) || a.IPv6 != ip6(1, 1) {
		t.Fatalf("pod 1 got %+v, want eni-1's primary and its IPv6 address", a)
	}
	if pl := p.Plan(); len(pl.UnassignIPv6) != 0 || len(pl.AssignIPv6) != 0 {
		t.Fatalf("plan %+v: the pod's IPv6 address stays", pl)
	}
}
