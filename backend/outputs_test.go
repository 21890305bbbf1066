package backend

import (
	"net/netip"
	"testing"

	"github.com/weftnet/weft/subnet"
)

func TestSubnetOutputs(t *testing.T) {
	sc := &subnet.Config{EnableIPv4: true, EnableIPv6: true, Network: netip.MustParsePrefix("10.244.0.0/16"),
		IPv6Network: netip.MustParsePrefix("fd00:10::/56")}
	l := &subnet.Lease{EnableIPv4: true, EnableIPv6: true, Subnet: netip.MustParsePrefix("10.244.3.0/24"),
		IPv6Subnet: netip.MustParsePrefix("fd00:10:0:3::/64")}
	o := SubnetOutputs(sc, l, 1450)
	if o.Lease != l || o.Env == nil || o.Env.MTU != 1450 || o.Env.Subnet != l.Subnet || o.Env.IPv6Subnet != l.IPv6Subnet ||
		o.Env.Network != sc.Network || o.Env.IPv6Network != sc.IPv6Network || !o.Env.EnableIPv4 || !o.Env.EnableIPv6 {
		t.Fatalf("env %+v", o.Env)
	}
	want := Traffic{Network: sc.Network, Subnet: l.Subnet, IPv6Network: sc.IPv6Network, IPv6Subnet: l.IPv6Subnet}
	if o.Traffic.Network != want.Network || o.Traffic.Subnet != want.Subnet || o.Traffic.IPv6Network != want.IPv6Network ||
		o.Traffic.IPv6Subnet != want.IPv6Subnet || o.PublishesNodeStatus {
		t.Fatalf("outputs %+v", o)
	}
	// A family that is off gives neither subnet.env lines nor rules, whatever the lease holds.
	sc.EnableIPv6 = false
	o = SubnetOutputs(sc, l, 1500)
	if o.Env.IPv6Subnet.IsValid() || o.Traffic.IPv6Network.IsValid() || o.Env.EnableIPv6 {
		t.Fatalf("IPv6 off: %+v %+v", o.Env, o.Traffic)
	}
}

func lease(node, cidr, ip string) subnet.Lease {
	l := subnet.Lease{EnableIPv4: true, Subnet: netip.MustParsePrefix(cidr), NodeName: node,
		Attrs: subnet.LeaseAttrs{BackendType: "vxlan", PublicIP: netip.MustParseAddr(ip)}}
	return l
}

func TestPeersApplyByNode(t *testing.T) {
	own := lease("self", "10.244.0.0/24", "192.0.2.1")
	all := func(subnet.Lease) bool { return true }
	p := Peers{}
	add := func(l subnet.Lease) { p.Apply("test", subnet.Event{Type: subnet.EventAdded, Lease: l}, &own, all) }
	del := func(l subnet.Lease) { p.Apply("test", subnet.Event{Type: subnet.EventRemoved, Lease: l}, &own, all) }

	add(own)
	if len(p) != 0 {
		t.Fatalf("own lease became a peer: %v", p)
	}
	a1 := lease("a", "10.244.1.0/24", "192.0.2.2")
	a2 := lease("a", "10.244.9.0/24", "192.0.2.2")
	add(a1)
	add(a2) // node a moved to a new subnet before its old lease went away
	if len(p) != 1 || p["a"].Subnet != a2.Subnet {
		t.Fatalf("peers %v, want node a on its new subnet only", p)
	}
	del(a1) // the old lease's removal must not remove the node
	if p["a"].Subnet != a2.Subnet {
		t.Fatalf("removing a's old lease removed its new one: %v", p)
	}
	del(a2)
	if len(p) != 0 {
		t.Fatalf("peers %v after a's lease went", p)
	}
	// etcd mode: no node names; the public address is the node.
	e1 := lease("", "10.244.4.0/24", "192.0.2.4")
	add(e1)
	if _, ok := p["192.0.2.4"]; !ok {
		t.Fatalf("etcd-mode peer not keyed by public address: %v", p)
	}
	// Leases without subnets (a subnetless backend's) never collide on a key.
	n1 := subnet.Lease{NodeName: "x", Attrs: subnet.LeaseAttrs{BackendType: "vxlan"}}
	n2 := subnet.Lease{NodeName: "y", Attrs: subnet.LeaseAttrs{BackendType: "vxlan"}}
	add(n1)
	add(n2)
	if len(p) != 3 {
		t.Fatalf("subnetless leases collided: %v", p)
	}
	// keep filters foreign backends out.
	p.Apply("test", subnet.Event{Type: subnet.EventAdded, Lease: lease("z", "10.244.5.0/24", "192.0.2.5")}, &own,
		func(l subnet.Lease) bool { return l.NodeName != "z" })
	if _, ok := p["z"]; ok {
		t.Fatal("a lease keep rejects became a peer")
	}
}

// etcd mode: a lease key has one value, so when a subnet's key now names another node (its old holder's expiry
// or deletion was missed, e.g. by a watch that broke and re-listed), the old holder no longer holds it and must
// not keep the subnet's route, neighbour and FDB entry.
func TestPeersApplySubnetTakenOver(t *testing.T) {
	own := lease("", "10.244.0.0/24", "192.0.2.1")
	all := func(subnet.Lease) bool { return true }
	p := Peers{}
	old := lease("", "10.244.7.0/24", "192.0.2.70")
	taker := lease("", "10.244.7.0/24", "192.0.2.9")
	p.Apply("test", subnet.Event{Type: subnet.EventAdded, Lease: old}, &own, all)
	p.Apply("test", subnet.Event{Type: subnet.EventAdded, Lease: taker}, &own, all)
	if len(p) != 1 || p["192.0.2.9"].Subnet != taker.Subnet {
		t.Fatalf("peers %v, want only 192.0.2.9 on 10.244.7.0/24", p)
	}
	// Kubernetes mode: two Nodes with one podCIDR are both real (a misconfiguration Desired arbitrates); neither
	// event removes the other node.
	p = Peers{}
	p.Apply("test", subnet.Event{Type: subnet.EventAdded, Lease: lease("a", "10.244.7.0/24", "192.0.2.70")}, &own, all)
	p.Apply("test", subnet.Event{Type: subnet.EventAdded, Lease: lease("b", "10.244.7.0/24", "192.0.2.9")}, &own, all)
	if len(p) != 2 {
		t.Fatalf("kube mode: peers %v, want both nodes", p)
	}
}

// A lease whose subnet overlaps this node's own (a hand-written store, or a dual-stack key repeating this node's
// IPv4 subnet with another IPv6 one) never becomes a peer: its route would take this node's pods away.
func TestPeersApplyRefusesOwnSubnet(t *testing.T) {
	own := lease("self", "10.244.4.0/24", "192.0.2.1")
	own.EnableIPv6, own.IPv6Subnet = true, netip.MustParsePrefix("fd00:244:0:4::/64")
	all := func(subnet.Lease) bool { return true }
	p := Peers{}
	add := func(l subnet.Lease) { p.Apply("test", subnet.Event{Type: subnet.EventAdded, Lease: l}, &own, all) }
	same4 := lease("a", "10.244.4.0/24", "192.0.2.2")
	same4.EnableIPv6, same4.IPv6Subnet = true, netip.MustParsePrefix("fd00:244:0:9::/64")
	add(same4)
	wider := lease("b", "10.244.4.0/23", "192.0.2.3")
	add(wider)
	v6 := lease("c", "10.244.8.0/24", "192.0.2.4")
	v6.EnableIPv6, v6.IPv6Subnet = true, netip.MustParsePrefix("fd00:244:0:4::/64")
	add(v6)
	if len(p) != 0 {
		t.Fatalf("leases overlapping this node's own became peers: %v", p)
	}
	// A known peer that moves onto this node's subnet no longer holds its old one.
	add(lease("d", "10.244.5.0/24", "192.0.2.5"))
	add(lease("d", "10.244.4.128/25", "192.0.2.5"))
	if len(p) != 0 {
		t.Fatalf("peer d kept after moving onto this node's subnet: %v", p)
	}
	add(lease("e", "10.244.6.0/24", "192.0.2.6"))
	if len(p) != 1 {
		t.Fatalf("a disjoint lease refused: %v", p)
	}
}
