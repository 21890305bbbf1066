package sim

// Set-up the fabric tests share (fabric_test.go, fabric_v6_test.go, fabric_exclusive_test.go,
// fabric_trunk_test.go): a Fabric of the rig's world, an ENI created and attached, the router's view of an ENI,
// and ip(8) run or failed. These need root, as the tests that use them.

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// newFabric makes a Fabric of r's world, its names prefix plus a random tag (returned), closed when the test ends.
func newFabric(t *testing.T, r *rig, prefix string) (*Fabric, string) {
	t.Helper()
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	tag := hex.EncodeToString(b)
	fab, err := NewFabric(r.world, prefix+tag)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fab.Close)
	return fab, tag
}

// attachENI creates an ENI in vsw-alisim0001 (sg-alisim0001) with the extra parameters, attaches it to
// i-alisim0001 and syncs fab; it returns the ENI's id and MAC.
func (r *rig) attachENI(fab *Fabric, extra map[string]string) (id, mac string) {
	r.t.Helper()
	p := map[string]string{"VSwitchId": "vsw-alisim0001", "SecurityGroupIds.1": "sg-alisim0001"}
	for k, v := range extra {
		p[k] = v
	}
	body := r.want("", "CreateNetworkInterface", p)
	id, mac = body["NetworkInterfaceId"].(string), body["MacAddress"].(string)
	r.want("", "AttachNetworkInterface", map[string]string{"NetworkInterfaceId": id, "InstanceId": "i-alisim0001"})
	if err := fab.Sync(); err != nil {
		r.t.Fatal(err)
	}
	return id, mac
}

// routerHandle is a netlink handle in fab's router namespace, closed when the test ends.
func routerHandle(t *testing.T, fab *Fabric) *netlink.Handle {
	t.Helper()
	rns, err := netns.GetFromName(fab.Router)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rns.Close() })
	h, err := netlink.NewHandleAt(rns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// routerState is the router's view of the addresses of family (unix.AF_INET or AF_INET6) behind the link dev:
// address -> "route" (the fabric's) and/or " neigh <mac>" (a permanent neighbour). The error: no such link.
func routerState(h *netlink.Handle, dev string, family int) (map[string]string, error) {
	out := map[string]string{}
	link, err := h.LinkByName(dev)
	if err != nil {
		return out, err
	}
	routes, _ := h.RouteListFiltered(family, &netlink.Route{Protocol: fabricProto}, netlink.RT_FILTER_PROTOCOL)
	for _, rt := range routes {
		if rt.LinkIndex == link.Attrs().Index {
			out[rt.Dst.IP.String()] = "route"
		}
	}
	neighs, _ := h.NeighList(link.Attrs().Index, family)
	for _, n := range neighs {
		if n.State&netlink.NUD_PERMANENT != 0 {
			out[n.IP.String()] += " neigh " + n.HardwareAddr.String()
		}
	}
	return out, nil
}

// ipCmd runs ip(8) with args and returns its output, failing the test when it fails.
func ipCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
