package sim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// ENI is an elastic network interface.
type ENI struct {
	ID          string   `json:"id"`
	VSwitchID   string   `json:"vSwitchId"`
	Type        string   `json:"type"` // Secondary or Trunk
	MAC         string   `json:"mac"`
	PrimaryIP   string   `json:"primaryIp"`
	Secondary   []string `json:"secondary,omitempty"`
	IPv6        []string `json:"ipv6,omitempty"`
	InstanceID  string   `json:"instanceId,omitempty"`
	DeviceIndex int      `json:"deviceIndex,omitempty"`
	// TrunkID is the trunk ENI a member ENI is attached to (Type Member; DeviceIndex is then its VLAN id):
	// trunk.go.
	TrunkID     string            `json:"trunkId,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Description string            `json:"description,omitempty"`
	ClientToken string            `json:"clientToken,omitempty"`
	// SecurityGroupIDs are the groups the ENI joined at creation (1..MaxSecurityGroupsPerENI).
	SecurityGroupIDs []string  `json:"securityGroupIds,omitempty"`
	CreationTime     time.Time `json:"creationTime,omitzero"`
	// Since records when each address (and "attached") became true, so metadata can lag behind the API.
	Since map[string]time.Time `json:"since,omitempty"`
	// Gone records when each address was unassigned, and Left when the ENI finished detaching from the instance
	// LeftInstance: metadata keeps showing them for its Lag, as it trails the API both ways.
	Gone         map[string]time.Time `json:"gone,omitempty"`
	Left         time.Time            `json:"left,omitzero"`
	LeftInstance string               `json:"leftInstance,omitempty"`
	LeftIPs      []string             `json:"leftIps,omitempty"`
	// Status is the settled status; Transition/Until describe an ongoing Attaching/Detaching/Deleting.
	Status     string    `json:"status"`
	Transition string    `json:"transition,omitempty"`
	Until      time.Time `json:"until,omitzero"`
}

func (w *World) eni(id string) *ENI {
	for _, e := range w.st.ENIs {
		if e.ID == id {
			return e
		}
	}
	return nil
}

// settleENIs completes transitions whose time has come; mu must be held.
func (w *World) settleENIs() {
	now := w.clock.Now()
	kept := w.st.ENIs[:0]
	for _, e := range w.st.ENIs {
		if e.Transition != "" && !now.Before(e.Until) {
			switch e.Transition {
			case "Attaching":
				e.Status, e.Gone = "InUse", nil
				e.mark("attached", e.Until)
			case "Detaching":
				if e.member() { // trunk.go: no NIC of the instance, nothing for metadata to remember
					e.leaveTrunk()
					break
				}
				e.Left, e.LeftInstance, e.LeftIPs = e.Until, e.InstanceID, append([]string{e.PrimaryIP}, e.Secondary...)
				e.Status, e.InstanceID, e.DeviceIndex = "Available", "", 0
			case "Deleting":
				continue
			}
			e.Transition, e.Until = "", time.Time{}
		}
		for a, at := range e.Gone {
			if now.Sub(at) > metadataMemory {
				delete(e.Gone, a)
			}
		}
		kept = append(kept, e)
	}
	w.st.ENIs = kept
}

// metadataMemory is how long departures (unassigned addresses, detached ENIs) are remembered for the metadata
// server's lag; a Metadata.Lag beyond it shows them gone after metadataMemory.
const metadataMemory = 10 * time.Minute

// MaxSecurityGroupsPerENI is the most security groups one ENI joins (Terway's security_groups: up to 10).
const MaxSecurityGroupsPerENI = 10

func (e *ENI) status() string {
	if e.Transition != "" {
		return e.Transition
	}
	return e.Status
}

// usedAddrs returns every address taken in a vSwitch (instance primaries and ENI addresses).
func (w *World) usedAddrs(sw *VSwitch) map[string]bool {
	used := map[string]bool{}
	for _, a := range sw.Reserved {
		used[a] = true
	}
	for _, in := range w.st.Instances {
		if in.VSwitchID == sw.ID {
			used[in.PrimaryIP] = true
		}
	}
	for _, e := range w.st.ENIs {
		if e.VSwitchID != sw.ID {
			continue
		}
		used[e.PrimaryIP] = true
		for _, a := range e.Secondary {
			used[a] = true
		}
		for _, a := range e.IPv6 {
			used[a] = true
		}
	}
	return used
}

// allocIPs hands out n free IPv4 addresses (or IPv6 with v6) from the vSwitch. The service reserves the first
// address and the last three of each block (the gateway is the third-last); alisim does the same.
func (w *World) allocIPs(sw *VSwitch, n int, v6 bool) ([]string, *APIError) {
	cidr := sw.CIDR
	if v6 {
		cidr = sw.IPv6CIDR
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, apiErr(400, "InvalidOperation.Ipv6NotEnabled", "The vSwitch %s has no IPv6 CIDR block.", sw.ID)
	}
	used := w.usedAddrs(sw)
	size := new(big.Int).Lsh(big.NewInt(1), uint(p.Addr().BitLen()-p.Bits()))
	last := new(big.Int).Sub(size, big.NewInt(4)) // highest usable offset
	var out []string
	a, first := p.Addr().Next(), int64(1)
	if v6 { // ::1 is the vSwitch's IPv6 gateway (fabric_v6.go), never an ENI's address
		a, first = a.Next(), 2
	}
	for i := first; big.NewInt(i).Cmp(last) <= 0 && len(out) < n && i < 1<<20; i++ {
		if s := a.String(); !used[s] {
			out = append(out, s)
		}
		a = a.Next()
	}
	if len(out) < n {
		return nil, apiErr(403, "InvalidVSwitchId.IpNotEnough", "The specified VSwitch %q has not enough IpAddress.", sw.ID)
	}
	return out, nil
}

func (w *World) macFor() string {
	b := []byte(newID("m"))
	return fmt.Sprintf("00:16:3e:%c%c:%c%c:%c%c", b[2], b[3], b[4], b[5], b[6], b[7])
}

// tokenPage is the MaxResults/NextToken paging of ECS actions.
func tokenPage(p params, n int) (lo, hi int, next string, err *APIError) {
	max, err := p.intIn("MaxResults", 10, 1, 500)
	if err != nil {
		return 0, 0, "", err
	}
	if lo, err = nextToken(p); err != nil {
		return 0, 0, "", err
	}
	lo = min(lo, n)
	hi = min(lo+max, n)
	if hi < n {
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(hi)))
	}
	return lo, hi, next, nil
}

func (w *World) typeOf(id string) *InstanceType {
	for _, t := range w.st.InstanceTypes {
		if t.ID == id {
			return t
		}
	}
	return nil
}

func (w *World) describeInstanceTypes(p params) (any, *APIError) {
	want := map[string]bool{}
	ids, err := p.list("InstanceTypes")
	if err != nil {
		return nil, err
	}
	for _, t := range ids {
		want[t] = true
	}
	var list []map[string]any
	for _, t := range w.st.InstanceTypes {
		if len(want) > 0 && !want[t.ID] {
			continue
		}
		list = append(list, map[string]any{"InstanceTypeId": t.ID, "EniQuantity": t.EniQuantity,
			"EniPrivateIpAddressQuantity": t.EniPrivateIpAddressQuantity, "EniIpv6AddressQuantity": t.EniIpv6AddressQuantity,
			"EniTotalQuantity": t.EniTotalQuantity, "EniTrunkSupported": t.EniTrunkSupported})
	}
	lo, hi, next, err := tokenPage(p, len(list))
	if err != nil {
		return nil, err
	}
	return map[string]any{"NextToken": next, "InstanceTypes": map[string]any{"InstanceType": nonNil(list[lo:hi])}}, nil
}

func (w *World) describeInstances(p params) (any, *APIError) {
	want := map[string]bool{}
	if s := p.get("InstanceIds"); s != "" {
		var ids []string
		if err := json.Unmarshal([]byte(s), &ids); err != nil {
			return nil, apiErr(400, "InvalidInstanceIds.Malformed", "InstanceIds must be a JSON array of strings.")
		}
		for _, id := range ids {
			want[id] = true
		}
	}
	var list []map[string]any
	for _, in := range w.st.Instances {
		sw := w.vswitch(in.VSwitchID)
		if len(want) > 0 && !want[in.ID] || p.get("VSwitchId") != "" && p.get("VSwitchId") != in.VSwitchID ||
			p.get("VpcId") != "" && (sw == nil || p.get("VpcId") != sw.VPCID) {
			continue
		}
		nics := []map[string]any{{"NetworkInterfaceId": primaryENIID(in), "MacAddress": in.MAC, "PrimaryIpAddress": in.PrimaryIP, "Type": "Primary"}}
		for _, e := range w.st.ENIs {
			if e.InstanceID == in.ID && e.status() == "InUse" && !e.member() {
				nics = append(nics, map[string]any{"NetworkInterfaceId": e.ID, "MacAddress": e.MAC, "PrimaryIpAddress": e.PrimaryIP, "Type": "Secondary"})
			}
		}
		list = append(list, map[string]any{"InstanceId": in.ID, "InstanceType": in.Type, "RegionId": w.st.RegionID, "ZoneId": in.Zone,
			"Status": in.Status, "HostName": in.Hostname, "VpcAttributes": map[string]any{"VpcId": sw.VPCID, "VSwitchId": sw.ID,
				"PrivateIpAddress": map[string]any{"IpAddress": []string{in.PrimaryIP}}},
			"NetworkInterfaces": map[string]any{"NetworkInterface": nics}})
	}
	lo, hi, next, err := tokenPage(p, len(list))
	if err != nil {
		return nil, err
	}
	return map[string]any{"Instances": map[string]any{"Instance": nonNil(list[lo:hi])}, "NextToken": next, "TotalCount": len(list),
		"PageNumber": 1, "PageSize": hi - lo}, nil
}

func primaryENIID(in *Instance) string { return "eni-p" + in.ID[2:] }

// primaryENI is the instance's primary ENI as DescribeNetworkInterfaces shows it. It is not an object of the
// world: the ENI actions refuse it (InvalidEniId.NotFound), where the service refuses detaching it with
// InvalidOperation.DetachPrimaryEniNotAllowed.
func primaryENI(in *Instance) *ENI {
	e := &ENI{ID: primaryENIID(in), VSwitchID: in.VSwitchID, Type: "Primary", MAC: in.MAC, PrimaryIP: in.PrimaryIP, InstanceID: in.ID,
		Status: "InUse"}
	if in.PrimaryIPv6 != "" {
		e.IPv6 = []string{in.PrimaryIPv6}
	}
	return e
}

func (w *World) eniJSON(e *ENI) map[string]any {
	sw := w.vswitch(e.VSwitchID)
	ips := []map[string]any{{"PrivateIpAddress": e.PrimaryIP, "Primary": true}}
	for _, a := range e.Secondary {
		ips = append(ips, map[string]any{"PrivateIpAddress": a, "Primary": false})
	}
	var v6 []map[string]any
	for _, a := range e.IPv6 {
		v6 = append(v6, map[string]any{"Ipv6Address": a})
	}
	var tags []map[string]any
	for k, v := range e.Tags {
		tags = append(tags, map[string]any{"TagKey": k, "TagValue": v})
	}
	out := map[string]any{"NetworkInterfaceId": e.ID, "Status": e.status(), "Type": e.Type, "MacAddress": e.MAC,
		"PrivateIpAddress": e.PrimaryIP, "InstanceId": e.InstanceID, "VSwitchId": e.VSwitchID, "VpcId": sw.VPCID, "ZoneId": sw.Zone,
		"Description": e.Description, "PrivateIpSets": map[string]any{"PrivateIpSet": ips},
		"Ipv6Sets": map[string]any{"Ipv6Set": nonNil(v6)}, "Tags": map[string]any{"Tag": nonNil(tags)},
		"SecurityGroupIds": map[string]any{"SecurityGroupId": nonNil(e.SecurityGroupIDs)}}
	if !e.CreationTime.IsZero() {
		out["CreationTime"] = e.CreationTime.UTC().Format(gmt)
	}
	if e.InstanceID != "" {
		att := map[string]any{"InstanceId": e.InstanceID, "DeviceIndex": e.DeviceIndex}
		w.trunkJSON(e, att)
		out["Attachment"] = att
	}
	return out
}

// tags reads Tag.N.Key / Tag.N.Value; tags with an empty key are ignored, as the SDK sends them when unset.
func tags(p params) (map[string]string, *APIError) {
	pairs, err := p.pairs("Tag")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, kv := range pairs {
		if kv[0] != "" {
			out[kv[0]] = kv[1]
		}
	}
	return out, nil
}

// maxIPv6PerENI bounds Ipv6AddressCount before the per-type figure is consulted (the largest documented one is 30).
const maxIPv6PerENI = 100

func (w *World) createNetworkInterface(p params) (any, *APIError) {
	if tok := p.get("ClientToken"); len(tok) > 64 || strings.ContainsFunc(tok, func(r rune) bool { return r > unicode.MaxASCII }) {
		return nil, errParam("ClientToken", tok, "at most 64 ASCII characters")
	}
	if tok := p.get("ClientToken"); tok != "" {
		for _, e := range w.st.ENIs {
			if e.ClientToken == tok {
				return w.eniJSON(e), nil
			}
		}
	}
	sw := w.vswitch(p.get("VSwitchId"))
	if sw == nil {
		return nil, apiErr(404, "InvalidVSwitchId.NotFound", "The specified VSwitchId %q does not exist.", p.get("VSwitchId"))
	}
	sgs, err := w.securityGroups(p, sw)
	if err != nil {
		return nil, err
	}
	// The service allows 0..49 secondary addresses at creation; an ENI never holds more than the largest
	// per-ENI figure of the types served, and attaching checks the instance's own figure.
	nsec, err := p.intIn("SecondaryPrivateIpAddressCount", 0, 0, 49)
	if err != nil {
		return nil, err
	}
	if limit := w.maxAddrsPerENI(); 1+nsec > limit {
		return nil, apiErr(403, "InvalidOperation.Ipv4CountExceeded", "An ENI holds at most %d IPv4 addresses (primary included): SecondaryPrivateIpAddressCount %d is too many.", limit, nsec)
	}
	n6, err := p.intIn("Ipv6AddressCount", 0, 0, maxIPv6PerENI)
	if err != nil {
		return nil, err
	}
	tagged, err := tags(p)
	if err != nil {
		return nil, err
	}
	ips, err := w.allocIPs(sw, 1+nsec, false)
	if err != nil {
		return nil, err
	}
	var v6 []string
	if n6 > 0 {
		if v6, err = w.allocIPs(sw, n6, true); err != nil {
			return nil, err
		}
	}
	typ := p.get("InstanceType")
	if typ == "" {
		typ = "Secondary"
	}
	if typ != "Secondary" && typ != "Trunk" {
		return nil, errParam("InstanceType", typ, "Secondary or Trunk")
	}
	e := &ENI{ID: newID("eni"), VSwitchID: sw.ID, Type: typ, MAC: w.macFor(), PrimaryIP: ips[0], Secondary: ips[1:], IPv6: v6,
		Description: p.get("Description"), ClientToken: p.get("ClientToken"), Status: "Available", Tags: tagged,
		SecurityGroupIDs: sgs, CreationTime: w.clock.Now().UTC().Truncate(time.Second)}
	w.st.ENIs = append(w.st.ENIs, e)
	return w.eniJSON(e), nil
}

// securityGroups reads SecurityGroupIds.N (or the older single SecurityGroupId): 1..MaxSecurityGroupsPerENI
// distinct groups that exist in the vSwitch's VPC, with the service's codes for each refusal.
func (w *World) securityGroups(p params, sw *VSwitch) ([]string, *APIError) {
	sgs, err := p.list("SecurityGroupIds")
	if err != nil {
		return nil, err
	}
	if one := p.get("SecurityGroupId"); one != "" {
		sgs = append(sgs, one)
	}
	var out []string
	seen := map[string]bool{}
	for _, id := range sgs {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	switch {
	case len(out) == 0:
		return nil, apiErr(400, "MissingParameter", "SecurityGroupId or SecurityGroupIds is mandatory for this action.")
	case len(out) > MaxSecurityGroupsPerENI:
		return nil, apiErr(400, "InvalidParameter", "The specified parameter SecurityGroupIds holds %d security groups: an ENI joins at most %d.", len(out), MaxSecurityGroupsPerENI)
	}
	for _, id := range out {
		g := w.securityGroup(id)
		if g == nil {
			return nil, apiErr(404, "InvalidSecurityGroupId.NotFound", "The specified SecurityGroupId %q does not exist.", id)
		}
		if g.VPCID != sw.VPCID {
			return nil, apiErr(403, "InvalidOperation.VpcMismatch", "The security group %s is in VPC %s, the vSwitch %s in VPC %s.", id, g.VPCID, sw.ID, sw.VPCID)
		}
	}
	return out, nil
}

func (w *World) securityGroup(id string) *SecurityGroup {
	for _, g := range w.st.SecurityGroups {
		if g.ID == id {
			return g
		}
	}
	return nil
}

// maxAddrsPerENI is the largest EniPrivateIpAddressQuantity of the types served (50 when none are), the most an
// ENI not attached to an instance may hold.
func (w *World) maxAddrsPerENI() int {
	limit := 0
	for _, t := range w.st.InstanceTypes {
		limit = max(limit, t.EniPrivateIpAddressQuantity)
	}
	if limit == 0 {
		limit = 50
	}
	return limit
}

func (w *World) eniParam(p params) (*ENI, *APIError) {
	e := w.eni(p.get("NetworkInterfaceId"))
	if e == nil {
		return nil, apiErr(404, "InvalidEniId.NotFound", "The specified NetworkInterfaceId %q does not exist.", p.get("NetworkInterfaceId"))
	}
	return e, nil
}

func stateErr(e *ENI, want string) *APIError {
	return apiErr(400, "InvalidOperation.InvalidEniState", "Expecting status is %s while current status is %s.", want, e.status())
}

func (w *World) attachNetworkInterface(p params) (any, *APIError) {
	e, err := w.eniParam(p)
	if err != nil {
		return nil, err
	}
	in := w.instance(p.get("InstanceId"))
	if in == nil {
		return nil, apiErr(404, "InvalidEcsId.NotFound", "The specified InstanceId %q does not exist.", p.get("InstanceId"))
	}
	if e.status() != "Available" {
		return nil, stateErr(e, "Available")
	}
	if sw := w.vswitch(e.VSwitchID); sw.Zone != in.Zone {
		return nil, apiErr(403, "InvalidOperation.AvailabilityZoneMismatch", "The ENI %s is in zone %s (vSwitch %s), the instance %s in zone %s.",
			e.ID, sw.Zone, sw.ID, in.ID, in.Zone)
	}
	if trunk := p.get("TrunkNetworkInstanceId"); trunk != "" {
		return w.attachMember(e, in, trunk)
	}
	if err := w.checkTrunkAttach(e, in); err != nil {
		return nil, err
	}
	t := w.typeOf(in.Type)
	attached := 1 // the primary ENI
	used := map[int]bool{0: true}
	for _, x := range w.st.ENIs {
		if x.InstanceID == in.ID && !x.member() { // members count apart (trunk.go)
			attached++
			used[x.DeviceIndex] = true
		}
	}
	if t != nil && attached >= t.EniQuantity {
		return nil, apiErr(403, "EniPerInstanceLimitExceeded", "The ENI quantity of instance %s (%s) reached its limit %d.", in.ID, in.Type, t.EniQuantity)
	}
	if n := 1 + len(e.Secondary); t != nil && n > t.EniPrivateIpAddressQuantity {
		return nil, apiErr(403, "InvalidOperation.Ipv4CountExceeded", "The ENI %s holds %d IPv4 addresses; an ENI of instance type %s holds at most %d.",
			e.ID, n, in.Type, t.EniPrivateIpAddressQuantity)
	}
	idx := 1
	for used[idx] {
		idx++
	}
	e.InstanceID, e.DeviceIndex = in.ID, idx
	e.Transition, e.Until = "Attaching", w.clock.Now().Add(w.st.Timing.ENITransition)
	return map[string]any{}, nil
}

func (w *World) detachNetworkInterface(p params) (any, *APIError) {
	for _, in := range w.st.Instances {
		if p.get("NetworkInterfaceId") == primaryENIID(in) {
			return nil, apiErr(400, "InvalidOperation.DetachPrimaryEniNotAllowed", "The primary ENI %s of instance %s cannot be detached.", primaryENIID(in), in.ID)
		}
	}
	e, err := w.eniParam(p)
	if err != nil {
		return nil, err
	}
	if e.status() != "InUse" || (p.get("InstanceId") != "" && p.get("InstanceId") != e.InstanceID) {
		return nil, stateErr(e, "InUse")
	}
	if err := w.checkDetach(e, p.get("TrunkNetworkInstanceId")); err != nil {
		return nil, err
	}
	e.Transition, e.Until = "Detaching", w.clock.Now().Add(w.st.Timing.ENITransition)
	return map[string]any{}, nil
}

func (w *World) deleteNetworkInterface(p params) (any, *APIError) {
	e, err := w.eniParam(p)
	if err != nil {
		return nil, err
	}
	if e.status() != "Available" {
		return nil, stateErr(e, "Available")
	}
	e.Transition, e.Until = "Deleting", w.clock.Now().Add(w.st.Timing.ENITransition)
	return map[string]any{}, nil
}

func (w *World) describeNetworkInterfaces(p params) (any, *APIError) {
	ids := map[string]bool{}
	list, err := p.list("NetworkInterfaceId")
	if err != nil {
		return nil, err
	}
	for _, id := range list {
		ids[id] = true
	}
	want, err := tags(p)
	if err != nil {
		return nil, err
	}
	var found []map[string]any
	// Every instance's primary ENI is listed too (Type Primary, InUse, device 0), as the service does: a
	// filter on InstanceId alone returns it beside the secondary ones.
	all := make([]*ENI, 0, len(w.st.Instances)+len(w.st.ENIs))
	for _, in := range w.st.Instances {
		all = append(all, primaryENI(in))
	}
	all = append(all, w.st.ENIs...)
	for _, e := range all {
		sw := w.vswitch(e.VSwitchID)
		match := (len(ids) == 0 || ids[e.ID]) && (p.get("InstanceId") == "" || p.get("InstanceId") == e.InstanceID) &&
			(p.get("VSwitchId") == "" || p.get("VSwitchId") == e.VSwitchID) && (p.get("VpcId") == "" || p.get("VpcId") == sw.VPCID) &&
			(p.get("Type") == "" || p.get("Type") == e.Type) && (p.get("Status") == "" || p.get("Status") == e.status())
		for k, v := range want { // AND; a key given without a value matches any value of it
			if t, ok := e.Tags[k]; !ok || (v != "" && t != v) {
				match = false
			}
		}
		if match {
			found = append(found, w.eniJSON(e))
		}
	}
	lo, hi, next, err := tokenPage(p, len(found))
	if err != nil {
		return nil, err
	}
	return map[string]any{"NetworkInterfaceSets": map[string]any{"NetworkInterfaceSet": nonNil(found[lo:hi])}, "NextToken": next,
		"TotalCount": len(found)}, nil
}
