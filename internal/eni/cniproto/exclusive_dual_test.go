package cniproto

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func exclusiveDualReply() AddReply {
	r := exclusiveReply()
	d := dualReply()
	r.IPv6, r.ENI.VSwitchIPv6CIDR, r.ENI.IPv6Gateway = d.IPv6, d.ENI.VSwitchIPv6CIDR, d.ENI.IPv6Gateway
	r.HostRoutes6 = []netip.Prefix{netip.MustParsePrefix("2408:4005:300:a1ff::10/128")}
	return r
}

// An exclusive dual-stack reply round-trips and validates; its IPv6 part is checked as shared dual stack's is,
// and its IPv6 host routes on their own.
func TestExclusiveDualReply(t *testing.T) {
	r := exclusiveDualReply()
	b, _ := json.Marshal(r)
	var back AddReply
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, r) {
		t.Fatalf("round trip: %+v %v, want %+v", back, err, r)
	}
	if err := back.validate(); err != nil {
		t.Fatal(err)
	}
	noRoutes := exclusiveDualReply()
	noRoutes.HostRoutes6 = nil // a node without an IPv6 address
	if err := noRoutes.validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		field string
		mod   func(*AddReply)
	}{
		{"ENI.VSwitchIPv6CIDR", func(r *AddReply) { r.ENI.VSwitchIPv6CIDR = netip.MustParsePrefix("2408:4005:300:b100::/64") }},
		{"ENI.IPv6Gateway", func(r *AddReply) { r.ENI.IPv6Gateway = netip.Addr{} }},
		{"IPv6 192.168.0.41", func(r *AddReply) { r.IPv6 = netip.MustParseAddr("192.168.0.41") }},
		{"HostRoutes6[0] 10.96.0.0/12", func(r *AddReply) { r.HostRoutes6 = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")} }},
		{"HostRoutes6[1] ::/0", func(r *AddReply) { r.HostRoutes6 = append(r.HostRoutes6, netip.MustParsePrefix("::/0")) }},
		{"HostRoutes6: 65", func(r *AddReply) {
			r.HostRoutes6 = nil
			for range 65 {
				r.HostRoutes6 = append(r.HostRoutes6, netip.MustParsePrefix("2408:4005:300:a1ff::10/128"))
			}
		}},
		{"HostRoutes6: 1 prefixes, expected none outside exclusive mode", func(r *AddReply) {
			r.IPv6, r.ENI.VSwitchIPv6CIDR, r.ENI.IPv6Gateway = netip.Addr{}, netip.Prefix{}, netip.Addr{}
		}},
	} {
		r := exclusiveDualReply()
		c.mod(&r)
		if err := r.validate(); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %v, want an error naming it", c.field, err)
		}
	}
}
