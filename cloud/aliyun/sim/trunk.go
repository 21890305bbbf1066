package sim

import "fmt"

// Trunk and member ENIs, as Terway's trunking uses them. What the public documentation says: CreateNetworkInterface
// takes InstanceType=Trunk; AttachNetworkInterface takes TrunkNetworkInstanceId; DescribeInstanceTypes reports
// EniTrunkSupported and EniTotalQuantity; a type holds EniTotalQuantity - EniQuantity member ENIs; the SDK's
// Attachment carries TrunkNetworkInterfaceId and MemberNetworkInterfaceIds. What alisim assumes (undocumented):
//   - a member ENI is created as an ordinary Secondary ENI and becomes one by AttachNetworkInterface with
//     TrunkNetworkInstanceId=<trunk ENI id> and InstanceId=<the trunk's instance>; while attached its Type is
//     Member, its InstanceId is the trunk's instance, and its Attachment.DeviceIndex is its VLAN id (the lowest
//     free one of its trunk, 1..4094), as Terway reads it; once detached it is a Secondary ENI again;
//   - the trunk must be InUse on that instance, the instance's type must support trunking, an instance holds at
//     most one trunk ENI, which counts against EniQuantity as any ENI; members do not, they count against
//     EniTotalQuantity - EniQuantity;
//   - members are not NICs of the instance: DescribeInstances and the metadata server do not list them (their
//     frames travel tagged on the trunk), and a trunk with members (or members attaching) cannot be detached;
//   - DetachNetworkInterface of a member takes InstanceId (the instance) and optionally TrunkNetworkInstanceId,
//     which must name its trunk;
//   - error codes for the refusals below are alisim's own, named after the service's conventions.

// MaxVLAN is the highest VLAN id a member ENI gets.
const MaxVLAN = 4094

// member says whether the ENI is attached (or attaching, or detaching) as a trunk member.
func (e *ENI) member() bool { return e.TrunkID != "" }

// attachMember attaches e as a member of the trunk ENI named by TrunkNetworkInstanceId on instance in; e is
// Available and in the instance's zone (checked by the caller); mu is held.
func (w *World) attachMember(e *ENI, in *Instance, trunkID string) (any, *APIError) {
	t := w.typeOf(in.Type)
	if t != nil && !t.EniTrunkSupported {
		return nil, apiErr(403, "InvalidOperation.TrunkNotSupported", "The instance type %s of instance %s does not support ENI trunking.", in.Type, in.ID)
	}
	if e.Type != "Secondary" {
		return nil, errParam("NetworkInterfaceId", e.ID, "a Secondary ENI (a "+e.Type+" ENI cannot be a trunk member)")
	}
	trunk := w.eni(trunkID)
	if trunk == nil || trunk.Type != "Trunk" {
		return nil, apiErr(404, "InvalidTrunkNetworkInstanceId.NotFound", "The specified TrunkNetworkInstanceId %q is not a trunk ENI.", trunkID)
	}
	if trunk.status() != "InUse" || trunk.InstanceID != in.ID {
		return nil, apiErr(400, "InvalidOperation.InvalidTrunkState", "The trunk ENI %s must be InUse on instance %s (it is %s on %q).",
			trunk.ID, in.ID, trunk.status(), trunk.InstanceID)
	}
	vlans := map[int]bool{}
	members := 0
	for _, x := range w.st.ENIs {
		if x.member() && x.InstanceID == in.ID {
			members++
		}
		if x.TrunkID == trunk.ID {
			vlans[x.DeviceIndex] = true
		}
	}
	if t != nil && members >= t.EniTotalQuantity-t.EniQuantity {
		return nil, apiErr(403, "MemberEniPerInstanceLimitExceeded", "The member ENI quantity of instance %s (%s) reached its limit %d.",
			in.ID, in.Type, t.EniTotalQuantity-t.EniQuantity)
	}
	if n := 1 + len(e.Secondary); t != nil && n > t.EniPrivateIpAddressQuantity {
		return nil, apiErr(403, "InvalidOperation.Ipv4CountExceeded", "The ENI %s holds %d IPv4 addresses; an ENI of instance type %s holds at most %d.",
			e.ID, n, in.Type, t.EniPrivateIpAddressQuantity)
	}
	vlan := 1
	for vlans[vlan] {
		vlan++
	}
	if vlan > MaxVLAN {
		return nil, apiErr(403, "InvalidOperation.VlanExhausted", "The trunk ENI %s has no free VLAN id (1..%d).", trunk.ID, MaxVLAN)
	}
	e.Type, e.TrunkID, e.InstanceID, e.DeviceIndex = "Member", trunk.ID, in.ID, vlan
	e.Transition, e.Until = "Attaching", w.clock.Now().Add(w.st.Timing.ENITransition)
	return map[string]any{}, nil
}

// checkTrunkAttach refuses attaching a trunk ENI to an instance whose type does not support trunking or that
// already holds one; mu is held.
func (w *World) checkTrunkAttach(e *ENI, in *Instance) *APIError {
	if e.Type != "Trunk" {
		return nil
	}
	if t := w.typeOf(in.Type); t != nil && !t.EniTrunkSupported {
		return apiErr(403, "InvalidOperation.TrunkNotSupported", "The instance type %s of instance %s does not support ENI trunking.", in.Type, in.ID)
	}
	for _, x := range w.st.ENIs {
		if x.Type == "Trunk" && x.InstanceID == in.ID {
			return apiErr(403, "InvalidOperation.TrunkExists", "The instance %s already holds the trunk ENI %s.", in.ID, x.ID)
		}
	}
	return nil
}

// checkDetach applies the trunk rules to a detach of e (InUse); mu is held.
func (w *World) checkDetach(e *ENI, trunkParam string) *APIError {
	if trunkParam != "" && trunkParam != e.TrunkID {
		return errParam("TrunkNetworkInstanceId", trunkParam, fmt.Sprintf("the trunk ENI %q the ENI %s is a member of", e.TrunkID, e.ID))
	}
	if e.Type != "Trunk" {
		return nil
	}
	for _, x := range w.st.ENIs {
		if x.TrunkID == e.ID {
			return apiErr(400, "InvalidOperation.TrunkHasMembers", "The trunk ENI %s still has the member ENI %s (%s): detach its members first.", e.ID, x.ID, x.status())
		}
	}
	return nil
}

// leaveTrunk completes a member's detach: it is a Secondary ENI again, Available.
func (e *ENI) leaveTrunk() {
	e.Type, e.TrunkID, e.Status, e.InstanceID, e.DeviceIndex = "Secondary", "", "Available", "", 0
}

// trunkJSON adds the trunk fields to an attached ENI's Attachment.
func (w *World) trunkJSON(e *ENI, att map[string]any) {
	switch {
	case e.member():
		att["TrunkNetworkInterfaceId"] = e.TrunkID
	case e.Type == "Trunk":
		ids := []string{}
		for _, x := range w.st.ENIs {
			if x.TrunkID == e.ID {
				ids = append(ids, x.ID)
			}
		}
		att["MemberNetworkInterfaceIds"] = map[string]any{"MemberNetworkInterfaceId": ids}
	}
}

// validateTrunks checks the trunk references of a state's ENIs: a member names a Trunk ENI of its own instance
// with a VLAN id in 1..MaxVLAN unique on that trunk, and has Type Member.
func validateTrunks(st *State) []error {
	var errs []error
	byID := map[string]*ENI{}
	for _, e := range st.ENIs {
		byID[e.ID] = e
	}
	vlans := map[string]map[int]bool{}
	for i, e := range st.ENIs {
		if e.TrunkID == "" {
			if e.Type == "Member" {
				errs = append(errs, fmt.Errorf("enis[%d].type: Member without a trunkId", i))
			}
			continue
		}
		t := byID[e.TrunkID]
		switch {
		case t == nil || t.Type != "Trunk":
			errs = append(errs, fmt.Errorf("enis[%d].trunkId: no trunk ENI %q", i, e.TrunkID))
		case t.InstanceID != e.InstanceID || e.Type != "Member":
			errs = append(errs, fmt.Errorf("enis[%d]: a member (type Member) of trunk %s must be on its instance %q", i, t.ID, t.InstanceID))
		case e.DeviceIndex < 1 || e.DeviceIndex > MaxVLAN || vlans[t.ID][e.DeviceIndex]:
			errs = append(errs, fmt.Errorf("enis[%d].deviceIndex: VLAN id %d: expected 1..%d, unique on trunk %s", i, e.DeviceIndex, MaxVLAN, t.ID))
		default:
			if vlans[t.ID] == nil {
				vlans[t.ID] = map[int]bool{}
			}
			vlans[t.ID][e.DeviceIndex] = true
		}
	}
	return errs
}
