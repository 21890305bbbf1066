package sim

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Drills: changes made behind a node's back, as an operator in the console (or another tenant of the VPC)
// would make them, for tests of how a backend notices and recovers. Each is one locked change, saved like an
// API write.

// ConsoleDetach detaches an InUse ENI as the console does: Detaching now, Available after Timing.ENITransition,
// with no call from the node. An ENI that is not InUse is refused, as the console refuses it.
func (w *World) ConsoleDetach(eniID string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.settle()
	e := w.eni(eniID)
	if e == nil {
		return fmt.Errorf("ENI %q does not exist", eniID)
	}
	if e.status() != "InUse" {
		return fmt.Errorf("ENI %s is %s, not InUse", eniID, e.status())
	}
	e.Transition, e.Until = "Detaching", w.clock.Now().Add(w.st.Timing.ENITransition)
	return w.save()
}

// ConsoleUnassign removes secondary addresses from an ENI at once, as the console's "unassign" does.
func (w *World) ConsoleUnassign(eniID string, addrs ...netip.Addr) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.eni(eniID)
	if e == nil {
		return fmt.Errorf("ENI %q does not exist", eniID)
	}
	var drop []string
	for _, a := range addrs {
		drop = append(drop, a.String())
	}
	rest, ok := removeAll(e.Secondary, drop)
	if !ok {
		return fmt.Errorf("ENI %s: not all of %v are its secondary addresses", eniID, addrs)
	}
	e.Secondary = rest
	for _, a := range drop {
		e.gone(a, w.clock.Now())
	}
	return w.save()
}

// FillVSwitch takes free IPv4 addresses of a vSwitch for someone else (VSwitch.Reserved) until only leave
// remain, so that the next CreateNetworkInterface or AssignPrivateIpAddresses needing more than leave gets
// InvalidVSwitchId.IpNotEnough. It returns how many it took (0 when no more than leave were free).
func (w *World) FillVSwitch(vswitch string, leave int) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	sw := w.vswitch(vswitch)
	if sw == nil {
		return 0, fmt.Errorf("vSwitch %q does not exist", vswitch)
	}
	if leave < 0 {
		return 0, fmt.Errorf("leave %d: expected 0 or more free addresses", leave)
	}
	n := w.available(sw) - leave
	if n <= 0 {
		return 0, nil
	}
	got, err := w.allocIPs(sw, n, false)
	if err != nil {
		return 0, fmt.Errorf("vSwitch %s: %s", vswitch, err.Message)
	}
	sw.Reserved = append(sw.Reserved, got...)
	return len(got), w.save()
}

// ReleaseReserved gives back up to n of the vSwitch's reserved addresses (n < 0: all) and returns how many.
func (w *World) ReleaseReserved(vswitch string, n int) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	sw := w.vswitch(vswitch)
	if sw == nil {
		return 0, fmt.Errorf("vSwitch %q does not exist", vswitch)
	}
	if n < 0 || n > len(sw.Reserved) {
		n = len(sw.Reserved)
	}
	sw.Reserved = slices.Clone(sw.Reserved[n:])
	return n, w.save()
}

// ENI returns a copy of an ENI as the API shows it now (tests and tools).
func (w *World) ENI(id string) (ENI, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.settle()
	e := w.eni(id)
	if e == nil {
		return ENI{}, false
	}
	c := *e
	c.Status = e.status()
	c.Secondary = slices.Clone(e.Secondary)
	c.SecurityGroupIDs = slices.Clone(e.SecurityGroupIDs)
	c.Since, c.Gone, c.Tags = nil, nil, maps.Clone(e.Tags)
	return c, true
}

// AddSecurityGroup adds a security group to the world (tests and topologies built in code).
func (w *World) AddSecurityGroup(id, vpcID string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.securityGroup(id) != nil {
		return fmt.Errorf("security group %q exists", id)
	}
	if w.vpc(vpcID) == nil {
		return fmt.Errorf("VPC %q does not exist", vpcID)
	}
	w.st.SecurityGroups = append(w.st.SecurityGroups, &SecurityGroup{ID: id, VPCID: vpcID})
	return w.save()
}

// AddVPC adds an empty VPC (no vSwitch, no table) to the world (tests that need a second VPC's objects).
func (w *World) AddVPC(id, cidr string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.vpc(id) != nil {
		return fmt.Errorf("VPC %q exists", id)
	}
	if _, err := block4(cidr); err != nil {
		return fmt.Errorf("VPC %s: %w", id, err)
	}
	w.st.VPCs = append(w.st.VPCs, &VPC{ID: id, Name: id, CIDR: cidr, VRouterID: "vrt-" + strings.TrimPrefix(id, "vpc-"), Created: w.clock.Now()})
	return w.save()
}
