package plugin

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/datapath"
)

// Exclusive dual stack: the datapath gets the ENI's IPv6 address with the block's prefix length, the gateway and
// the IPv6 host routes; the result lists both families; CHECK hands the same pod (from the state file) to the
// datapath; DEL returns the ENI.
func TestExclusiveDualAddCheckDel(t *testing.T) {
	e, x := exclusiveEnv(t)
	inner := e.weftd.mutate
	e.weftd.mutate = func(r *cniproto.AddReply) {
		inner(r)
		r.IPv6, r.ENI.IPv6Gateway = netip.MustParseAddr("2408:4005:300:a100::29"), netip.MustParseAddr("2408:4005:300:a100::1")
		r.ENI.VSwitchIPv6CIDR = netip.MustParsePrefix("2408:4005:300:a100::/64")
		r.HostRoutes6 = []netip.Prefix{netip.MustParsePrefix("2408:4005:300:a1ff::10/128")}
	}
	res := e.add(t, "c6")
	ips, routes := res["ips"].([]any), res["routes"].([]any)
	if len(ips) != 2 || len(routes) != 2 {
		t.Fatalf("result %v, want both families", res)
	}
	ip6, r6 := ips[1].(map[string]any), routes[1].(map[string]any)
	if ip6["address"] != "2408:4005:300:a100::29/64" || ip6["gateway"] != "2408:4005:300:a100::1" || ip6["interface"] != float64(1) ||
		r6["dst"] != "::/0" || r6["gw"] != "2408:4005:300:a100::1" {
		t.Fatalf("IPv6 in the result: %v %v", ip6, r6)
	}
	p := x.xpods[datapath.HostVethName("c6", "eth0")]
	if p.IPv6.String() != "2408:4005:300:a100::29" || p.IPv6Bits != 64 || p.IPv6Gateway.String() != "2408:4005:300:a100::1" || len(p.HostRoutes6) != 1 {
		t.Fatalf("exclusive pod %+v", p)
	}
	prev := e.conf(map[string]any{"prevResult": res})
	if err := e.p.Check(e.args("c6", prev)); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	if err := e.p.Del(e.args("c6", prev)); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if got := strings.Join(x.xcalls, ","); !strings.HasSuffix(got, "return c6") {
		t.Fatalf("exclusive calls %s", got)
	}
}
