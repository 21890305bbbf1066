package plugin

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/datapath"
)

// A dual-stack ADD result lists both addresses on the pod's interface and both default routes; an IPv4-only one
// is unchanged. The datapath pod and the saved state carry the IPv6 address for DEL.
func TestDualResult(t *testing.T) {
	args := &skel.CmdArgs{ContainerID: "c1", Netns: "/var/run/netns/p", IfName: "eth0"}
	v6 := netip.MustParseAddr("2408:4005:300:a100::29")
	r := addResult("1.0.0", args, netip.MustParseAddr("192.168.0.41"), datapath.Result{HostVeth: "wen0"})
	addIPv6Result(r, v6)
	out, err := r.GetAsVersion("1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(out)
	for _, want := range []string{`"address":"192.168.0.41/32"`, `"address":"2408:4005:300:a100::29/128"`, `"gateway":"fe80::1"`, `{"dst":"::/0","gw":"fe80::1"}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("result %s lacks %s", b, want)
		}
	}
	if res := out.(*current.Result); len(res.IPs) != 2 || *res.IPs[1].Interface != 1 {
		t.Errorf("IPs %+v", res.IPs)
	}
	only4 := addResult("1.0.0", args, netip.MustParseAddr("192.168.0.41"), datapath.Result{})
	addIPv6Result(only4, netip.Addr{})
	if len(only4.IPs) != 1 || len(only4.Routes) != 1 {
		t.Errorf("IPv4-only result changed: %+v", only4)
	}
	pod := datapathPod(args, netip.MustParseAddr("192.168.0.41"), cniproto.AddReply{IP: netip.MustParseAddr("192.168.0.41"), Table: 1003, IPv6: v6})
	if pod.IPv6 != v6 {
		t.Errorf("datapath pod %+v lacks the IPv6 address", pod)
	}
	if got := (state{IP: pod.IP, Table: 1003, IPv6: v6}).reply(); got.IPv6 != v6 {
		t.Errorf("state reply %+v lacks the IPv6 address", got)
	}
}

func TestDualStateRefusesBadIPv6(t *testing.T) {
	p := t.TempDir() + "/s.json"
	if err := saveState(p, state{IP: netip.MustParseAddr("192.168.0.41"), Table: 1003, IPv6: netip.MustParseAddr("fe80::9")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadState(p); err == nil || !strings.Contains(err.Error(), "IPv6 fe80::9") {
		t.Fatalf("link-local IPv6 in the state: %v", err)
	}
}
