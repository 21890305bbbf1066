package cniproto

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func exclusiveReply() AddReply {
	return AddReply{Version: Version, IP: netip.MustParseAddr("192.168.0.40"), Table: 1003, Mode: ModeExclusive,
		ENI: ENIInfo{ID: "eni-1", MAC: "00:16:3e:00:00:09", VSwitchCIDR: netip.MustParsePrefix("192.168.0.0/24"),
			Gateway: netip.MustParseAddr("192.168.0.253"), PrimaryIP: netip.MustParseAddr("192.168.0.40")},
		HostRoutes: []netip.Prefix{netip.MustParsePrefix("192.168.0.10/32"), netip.MustParsePrefix("10.96.0.0/12")}}
}

// The exclusive fields are additive: a shared reply encodes as before (no Mode, HostRoutes, PrimaryIP), an
// exclusive one round-trips, and one from an older weftd (no Mode) reads as shared.
func TestExclusiveReplyIsAdditive(t *testing.T) {
	shared := AddReply{Version: Version, IP: netip.MustParseAddr("192.168.0.41"), Table: 1003}
	b, _ := json.Marshal(shared)
	for _, k := range []string{"Mode", "HostRoutes", "PrimaryIP"} {
		if strings.Contains(string(b), k) {
			t.Errorf("a shared reply carries %s: %s", k, b)
		}
	}
	r := exclusiveReply()
	b, _ = json.Marshal(r)
	var back AddReply
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, r) {
		t.Fatalf("round trip: %+v %v, want %+v", back, err, r)
	}
	if err := back.validate(); err != nil {
		t.Fatal(err)
	}
}

func TestExclusiveReplyRefusesBadFields(t *testing.T) {
	for _, c := range []struct {
		field string
		mod   func(*AddReply)
	}{
		{"Mode", func(r *AddReply) { r.Mode = "trunk" }},
		{"ENI.MAC", func(r *AddReply) { r.ENI.MAC = "nope" }},
		{"ENI.Gateway", func(r *AddReply) { r.ENI.Gateway = netip.Addr{} }},
		{"ENI.PrimaryIP", func(r *AddReply) { r.ENI.PrimaryIP = netip.MustParseAddr("192.168.0.99") }},
		{"HostRoutes[1]", func(r *AddReply) { r.HostRoutes[1] = netip.MustParsePrefix("0.0.0.0/0") }},
		{"HostRoutes:", func(r *AddReply) { r.HostRoutes = make([]netip.Prefix, maxHostRoutes+1) }},
	} {
		r := exclusiveReply()
		c.mod(&r)
		if err := r.validate(); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %v, want an error naming it", c.field, err)
		}
	}
}
