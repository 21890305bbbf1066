package plugin

import (
	"errors"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/datapath"
)

// fakeExclusive is fakeDatapath with the exclusive mode: pods by host veth, the ENI in the pod or not.
type fakeExclusive struct {
	*fakeDatapath
	xmu    sync.Mutex
	xpods  map[string]datapath.ExclusivePod
	xcalls []string
	addErr error
}

var _ ExclusiveDatapath = (*fakeExclusive)(nil)

func (f *fakeExclusive) AddExclusive(p datapath.ExclusivePod) (datapath.ExclusiveResult, error) {
	f.xmu.Lock()
	defer f.xmu.Unlock()
	f.xcalls = append(f.xcalls, "add "+p.IP.String()+" "+p.MAC.String())
	if f.addErr != nil {
		return datapath.ExclusiveResult{}, f.addErr
	}
	veth := datapath.HostVethName(p.ContainerID, p.IfName)
	f.xpods[veth] = p
	return datapath.ExclusiveResult{HostVeth: veth, HostMAC: net.HardwareAddr{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}, PodMAC: p.MAC,
		PodVethMAC: net.HardwareAddr{0x0a, 0, 0, 0, 0, 1}}, nil
}

func (f *fakeExclusive) ReturnENI(p datapath.ExclusivePod) error {
	f.xmu.Lock()
	defer f.xmu.Unlock()
	f.xcalls = append(f.xcalls, "return "+p.ContainerID)
	delete(f.xpods, datapath.HostVethName(p.ContainerID, p.IfName))
	return nil
}

func (f *fakeExclusive) CheckExclusive(p datapath.ExclusivePod) error {
	f.xmu.Lock()
	defer f.xmu.Unlock()
	f.xcalls = append(f.xcalls, "check "+p.IP.String())
	got, ok := f.xpods[datapath.HostVethName(p.ContainerID, p.IfName)]
	if !ok || !reflect.DeepEqual(got, p) {
		return errors.New("not this pod's exclusive datapath")
	}
	return nil
}

func exclusiveEnv(t *testing.T) (*env, *fakeExclusive) {
	e := newEnv(t)
	x := &fakeExclusive{fakeDatapath: e.dp, xpods: map[string]datapath.ExclusivePod{}}
	e.p.Datapath = x
	e.weftd.mutate = func(r *cniproto.AddReply) {
		r.Mode = cniproto.ModeExclusive
		r.ENI.MAC, r.ENI.PrimaryIP = "00:16:3e:00:00:09", r.IP
		r.HostRoutes = []netip.Prefix{netip.MustParsePrefix("10.0.1.10/32"), netip.MustParsePrefix("10.96.0.0/12")}
	}
	return e, x
}

// In exclusive mode ADD builds the exclusive datapath (not the veth one) and the result lists the pod's
// interface with the ENI's MAC, its primary address and the default route via the vSwitch gateway; CHECK checks
// it, DEL returns the ENI before the shared teardown and gives the address back.
func TestExclusiveAddCheckDel(t *testing.T) {
	e, x := exclusiveEnv(t)
	res := e.add(t, "c1")
	ifs := res["interfaces"].([]any)
	pod := ifs[1].(map[string]any)
	ip := res["ips"].([]any)[0].(map[string]any)
	route := res["routes"].([]any)[0].(map[string]any)
	if pod["name"] != "eth0" || pod["mac"] != "00:16:3e:00:00:09" || ip["address"] != "10.0.1.7/32" || ip["gateway"] != "10.0.1.253" ||
		ip["interface"] != float64(1) || route["dst"] != "0.0.0.0/0" || route["gw"] != "10.0.1.253" || len(ifs) != 3 {
		t.Fatalf("result %v", res)
	}
	if len(e.dp.calls) != 0 || len(x.xcalls) != 1 || x.xcalls[0] != "add 10.0.1.7 00:16:3e:00:00:09" {
		t.Fatalf("datapath calls: shared %v, exclusive %v", e.dp.calls, x.xcalls)
	}
	p := x.xpods[datapath.HostVethName("c1", "eth0")]
	if p.Gateway.String() != "10.0.1.253" || len(p.HostRoutes) != 2 || p.MTU != 1500 {
		t.Fatalf("exclusive pod %+v", p)
	}
	prev := e.conf(map[string]any{"prevResult": res})
	if err := e.p.Check(e.args("c1", prev)); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	if err := e.p.Del(e.args("c1", prev)); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if got := strings.Join(x.xcalls, ","); got != "add 10.0.1.7 00:16:3e:00:00:09,check 10.0.1.7,return c1" {
		t.Fatalf("exclusive calls %s", got)
	}
	if len(e.dp.calls) != 1 || e.dp.calls[0] != "del 10.0.1.7" || len(e.weftd.holding()) != 0 || len(e.states()) != 0 {
		t.Fatalf("after DEL: shared calls %v, weftd holds %v, states %v", e.dp.calls, e.weftd.holding(), e.states())
	}
}

// A failed exclusive datapath gives the address back; a datapath without the exclusive mode refuses.
func TestExclusiveAddFailureGivesBack(t *testing.T) {
	e, x := exclusiveEnv(t)
	x.addErr = errors.New("no ENI with that MAC")
	if err := e.p.Add(e.args("c2", e.conf(nil))); err == nil || !strings.Contains(err.Error(), "no ENI with that MAC") {
		t.Fatalf("ADD: %v", err)
	}
	if len(e.weftd.holding()) != 0 {
		t.Fatalf("weftd still holds %v", e.weftd.holding())
	}
	e.p.Datapath = e.dp
	if err := e.p.Add(e.args("c3", e.conf(nil))); err == nil || !strings.Contains(err.Error(), "exclusive") || len(e.weftd.holding()) != 0 {
		t.Fatalf("ADD with a shared-only datapath: %v, weftd holds %v", err, e.weftd.holding())
	}
}
