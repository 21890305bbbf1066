package sim

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Validate checks a state (a topology or a state file) before it is served, naming every field that is wrong:
// addresses and blocks that do not parse, references to objects that do not exist (a handler would dereference
// them), duplicate ids, and values outside what the service allows. The handlers can then trust the world.
func (st *State) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if st.RegionID == "" {
		bad("regionId: empty")
	}
	ids := map[string]string{} // id -> where first seen
	unique := func(where, id string) {
		if id == "" {
			bad("%s: empty id", where)
			return
		}
		if first, dup := ids[id]; dup {
			bad("%s: id %q is also %s", where, id, first)
			return
		}
		ids[id] = where
	}
	vpcs := map[string]netip.Prefix{}
	for i, v := range st.VPCs {
		where := fmt.Sprintf("vpcs[%d]", i)
		unique(where, v.ID)
		p, err := block4(v.CIDR)
		if err != nil {
			bad("%s.cidr: %v", where, err)
		}
		vpcs[v.ID] = p
	}
	tables := map[string]bool{}
	for _, t := range st.RouteTables {
		tables[t.ID] = true
	}
	sws := map[string]netip.Prefix{}
	for i, s := range st.VSwitches {
		where := fmt.Sprintf("vSwitches[%d]", i)
		unique(where, s.ID)
		vp, ok := vpcs[s.VPCID]
		if !ok {
			bad("%s.vpcId: no VPC %q", where, s.VPCID)
		}
		p, err := block4(s.CIDR)
		switch {
		case err != nil:
			bad("%s.cidr: %v", where, err)
		case p.Bits() < 16 || p.Bits() > 29:
			bad("%s.cidr: %s: a vSwitch block is /16 to /29", where, p)
		case ok && vp.IsValid() && (!vp.Contains(p.Addr()) || p.Bits() < vp.Bits()):
			bad("%s.cidr: %s is not within the VPC block %s", where, p, vp)
		}
		sws[s.ID] = p
		if s.IPv6CIDR != "" {
			if p6, err := netip.ParsePrefix(s.IPv6CIDR); err != nil || !p6.Addr().Is6() || p6.Masked() != p6 {
				bad("%s.ipv6Cidr: %q is not an IPv6 block (e.g. 2408:4005:300:a100::/64)", where, s.IPv6CIDR)
			}
		}
		if s.RouteTableID != "" && !tables[s.RouteTableID] {
			bad("%s.routeTableId: no route table %q", where, s.RouteTableID)
		}
	}
	for i, t := range st.RouteTables {
		where := fmt.Sprintf("routeTables[%d]", i)
		unique(where, t.ID)
		if _, ok := vpcs[t.VPCID]; !ok {
			bad("%s.vpcId: no VPC %q", where, t.VPCID)
		}
		if t.Type != "System" && t.Type != "Custom" {
			bad("%s.type: %q is not System or Custom", where, t.Type)
		}
		if t.Quota < 0 || t.Quota > 1000 {
			bad("%s.quota: %d is not within 0..1000", where, t.Quota)
		}
		for j, e := range t.Entries {
			ew := fmt.Sprintf("%s.entries[%d]", where, j)
			unique(ew, e.ID)
			if p, err := netip.ParsePrefix(e.Dst); err != nil || p.Masked() != p {
				bad("%s.dst: %q is not a CIDR block", ew, e.Dst)
			}
			if !nextHopTypes[e.NextHopType] && e.NextHopType != "local" && e.NextHopType != "service" {
				bad("%s.nextHopType: %q is not a documented next-hop type (or local/service for system entries)", ew, e.NextHopType)
			}
			if e.Type != "System" && e.Type != "Custom" {
				bad("%s.type: %q is not System or Custom", ew, e.Type)
			}
		}
	}
	for i, in := range st.Instances {
		where := fmt.Sprintf("instances[%d]", i)
		unique(where, in.ID)
		if !strings.HasPrefix(in.ID, "i-") || len(in.ID) < 3 {
			bad("%s.id: %q does not look like i-<id>", where, in.ID)
		}
		sp, ok := sws[in.VSwitchID]
		if !ok {
			bad("%s.vSwitchId: no vSwitch %q", where, in.VSwitchID)
		}
		a, err := netip.ParseAddr(in.PrimaryIP)
		switch {
		case err != nil || !a.Is4():
			bad("%s.primaryIp: %q is not an IPv4 address", where, in.PrimaryIP)
		case ok && sp.IsValid() && !sp.Contains(a):
			bad("%s.primaryIp: %s is not within the vSwitch block %s", where, a, sp)
		}
		if in.PrimaryIPv6 != "" {
			if a, err := netip.ParseAddr(in.PrimaryIPv6); err != nil || !a.Is6() {
				bad("%s.primaryIpv6: %q is not an IPv6 address", where, in.PrimaryIPv6)
			}
		}
		if _, err := net.ParseMAC(in.MAC); err != nil {
			bad("%s.mac: %q is not a MAC address", where, in.MAC)
		}
	}
	for i, s := range st.VSwitches {
		for j, a := range s.Reserved {
			if ip, err := netip.ParseAddr(a); err != nil || !sws[s.ID].Contains(ip) {
				bad("vSwitches[%d].reserved[%d]: %q is not an address of the vSwitch block %s", i, j, a, s.CIDR)
			}
		}
	}
	sgs := map[string]string{}
	for i, g := range st.SecurityGroups {
		where := fmt.Sprintf("securityGroups[%d]", i)
		unique(where, g.ID)
		if !strings.HasPrefix(g.ID, "sg-") {
			bad("%s.id: %q does not look like sg-<id>", where, g.ID)
		}
		if _, ok := vpcs[g.VPCID]; !ok {
			bad("%s.vpcId: no VPC %q", where, g.VPCID)
		}
		sgs[g.ID] = g.VPCID
	}
	for i, e := range st.ENIs {
		where := fmt.Sprintf("enis[%d]", i)
		if len(e.SecurityGroupIDs) > MaxSecurityGroupsPerENI {
			bad("%s.securityGroupIds: %d groups, at most %d", where, len(e.SecurityGroupIDs), MaxSecurityGroupsPerENI)
		}
		for j, g := range e.SecurityGroupIDs {
			if _, ok := sgs[g]; !ok {
				bad("%s.securityGroupIds[%d]: no security group %q", where, j, g)
			}
		}
		unique(where, e.ID)
		if !strings.HasPrefix(e.ID, "eni-") {
			bad("%s.id: %q does not look like eni-<id>", where, e.ID)
		}
		if _, ok := sws[e.VSwitchID]; !ok {
			bad("%s.vSwitchId: no vSwitch %q", where, e.VSwitchID)
		}
		for _, a := range append([]string{e.PrimaryIP}, append(e.Secondary, e.IPv6...)...) {
			if _, err := netip.ParseAddr(a); err != nil {
				bad("%s: address %q does not parse", where, a)
			}
		}
	}
	errs = append(errs, validateTrunks(st)...) // trunk.go
	for i, t := range st.InstanceTypes {
		if t.ID == "" || t.EniQuantity < 0 || t.EniPrivateIpAddressQuantity < 0 || t.EniIpv6AddressQuantity < 0 || t.EniTotalQuantity < 0 {
			bad("instanceTypes[%d]: an empty id or a negative figure", i)
		}
	}
	for i, k := range st.AccessKeys {
		if k.ID == "" || k.Secret == "" {
			bad("accessKeys[%d]: id and secret must both be set", i)
		}
	}
	tm := st.Timing
	if tm.EntryPending < 0 || tm.EntryDeleting < 0 || tm.WriteGap < 0 || tm.ENITransition < 0 {
		bad("timing: durations must not be negative")
	}
	return errors.Join(errs...)
}

// block4 parses an IPv4 CIDR block in canonical form (no host bits).
func block4(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR block (e.g. 192.168.0.0/16)", s)
	case !p.Addr().Is4():
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 block", s)
	case p.Masked() != p:
		return netip.Prefix{}, fmt.Errorf("%q has host bits set (the block is %s)", s, p.Masked())
	}
	return p, nil
}
