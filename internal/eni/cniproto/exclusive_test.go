package cniproto

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
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
	checkAdditive(t, AddReply{Version: Version, IP: netip.MustParseAddr("192.168.0.41"), Table: 1003},
		[]string{"Mode", "HostRoutes", "PrimaryIP"}, exclusiveReply())
}

func TestExclusiveReplyRefusesBadFields(t *testing.T) {
	checkRefuses(t, exclusiveReply, []fieldCase{
		{"Mode", func(r *AddReply) { r.Mode = "trunk" }},
		{"ENI.MAC", func(r *AddReply) { r.ENI.MAC = "nope" }},
		{"ENI.Gateway", func(r *AddReply) { r.ENI.Gateway = netip.Addr{} }},
		{"ENI.PrimaryIP", func(r *AddReply) { r.ENI.PrimaryIP = netip.MustParseAddr("192.168.0.99") }},
		{"HostRoutes[1]", func(r *AddReply) { r.HostRoutes[1] = netip.MustParsePrefix("0.0.0.0/0") }},
		{"HostRoutes:", func(r *AddReply) { r.HostRoutes = make([]netip.Prefix, maxHostRoutes+1) }},
	})
}

// An exclusive reply needs no route table (the ENI leaves the host with it); a shared one still does.
func TestExclusiveReplyWithoutTable(t *testing.T) {
	r := exclusiveReply()
	r.Table = 0
	if err := r.validate(); err != nil {
		t.Fatalf("exclusive without a table: %v", err)
	}
	r.Mode = ModeShared
	if err := r.validate(); err == nil || !strings.Contains(err.Error(), "Table 0") {
		t.Fatalf("shared without a table: %v", err)
	}
}

// A handler's ADD reply the server refuses is given back with the handler's Del: the plugin never learns of
// the address, so nobody else would.
func TestInvalidAddReplyIsGivenBack(t *testing.T) {
	bad := goodReply()
	bad.Table = 0
	h := &testHandler{reply: bad}
	c := &Client{Socket: serve(t, h), Timeout: 30 * time.Second}
	_, err := c.Add(context.Background(), AddRequest{Pod: pod("g1")})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeInternal || !strings.Contains(e.Message, "Table 0") {
		t.Fatalf("Add with an invalid reply: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.dels) != 1 || h.dels[0].Pod.ContainerID != "g1" || h.dels[0].IP != bad.IP {
		t.Fatalf("Dels after the refused reply: %+v, want one giving back %v of g1", h.dels, bad.IP)
	}
}
