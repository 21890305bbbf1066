package datapath

import (
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
)

// Prune removes the host veths of attachments no longer valid, keeps the valid ones' and everything not ours.
func TestPrune(t *testing.T) {
	n := newTestNet(t)
	keep := n.testPod()
	if _, err := n.add(keep); err != nil {
		t.Fatal(err)
	}
	path2, remove2 := namedNetns(t)
	defer remove2()
	gone := Pod{ContainerID: "fedcba9876543210", Netns: path2, IfName: "eth0", IP: netip.MustParseAddr("10.9.0.6"), Table: 1005}
	if _, err := n.add(gone); err != nil {
		t.Fatal(err)
	}
	// Not ours: a bridge with our name shape, and a veth of another name.
	if err := n.host.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "wen0123456789ab"}}); err != nil {
		t.Fatal(err)
	}
	if err := n.host.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "other0"}, PeerName: "other1"}); err != nil {
		t.Fatal(err)
	}
	var err error
	n.inHost(func() { err = Prune([]Attachment{{ContainerID: keep.ContainerID, IfName: keep.IfName}}) })
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{HostVethName(keep.ContainerID, "eth0"): true, HostVethName(gone.ContainerID, "eth0"): false,
		"wen0123456789ab": true, "other0": true} {
		_, err := n.host.LinkByName(name)
		if got := err == nil; got != want {
			t.Errorf("%s present %v after Prune, want %v", name, got, want)
		}
	}
	if err := n.check(keep); err != nil {
		t.Errorf("the kept pod's datapath: %v", err)
	}
}
