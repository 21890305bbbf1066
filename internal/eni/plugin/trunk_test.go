package plugin

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/datapath"
)

// fakeMember is fakeExclusive with member links: the links on the host by MAC, and every call in one log.
type fakeMember struct {
	*fakeExclusive
	mmu       sync.Mutex
	links     map[string]datapath.MemberLink
	ensureErr error
}

var _ MemberDatapath = (*fakeMember)(nil)

func (f *fakeMember) EnsureMemberLink(m datapath.MemberLink) (string, error) {
	f.mmu.Lock()
	defer f.mmu.Unlock()
	f.xmu.Lock()
	f.xcalls = append(f.xcalls, "link "+m.Kind+" "+m.MAC.String()+" on "+m.TrunkMAC.String())
	f.xmu.Unlock()
	if f.ensureErr != nil {
		return "", f.ensureErr
	}
	f.links[m.MAC.String()] = m
	return datapath.MemberLinkName(m.VLAN), nil
}

func (f *fakeMember) DeleteMemberLink(mac net.HardwareAddr) error {
	f.mmu.Lock()
	defer f.mmu.Unlock()
	f.xmu.Lock()
	f.xcalls = append(f.xcalls, "unlink "+mac.String())
	f.xmu.Unlock()
	delete(f.links, mac.String())
	return nil
}

func memberEnv(t *testing.T) (*env, *fakeMember) {
	e, x := exclusiveEnv(t)
	m := &fakeMember{fakeExclusive: x, links: map[string]datapath.MemberLink{}}
	e.p.Datapath = m
	excl := e.weftd.mutate
	e.weftd.mutate = func(r *cniproto.AddReply) {
		excl(r)
		r.ENI.Trunk = &cniproto.TrunkInfo{MAC: "00:16:3e:00:00:aa", VLAN: 4, Link: cniproto.TrunkLinkMACVLAN}
	}
	return e, m
}

// A member ENI's link is made on the trunk before the ENI moves into the pod, and removed on DEL once the ENI is
// back on the host.
func TestMemberAddDel(t *testing.T) {
	e, m := memberEnv(t)
	res := e.add(t, "m1")
	if l, ok := m.links["00:16:3e:00:00:09"]; !ok || l.VLAN != 4 || l.Kind != datapath.MemberMACVLAN || l.TrunkMAC.String() != "00:16:3e:00:00:aa" {
		t.Fatalf("member links %v", m.links)
	}
	if err := e.p.Del(e.args("m1", e.conf(map[string]any{"prevResult": res}))); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	want := "link macvlan 00:16:3e:00:00:09 on 00:16:3e:00:00:aa,add 10.0.1.7 00:16:3e:00:00:09,return m1,unlink 00:16:3e:00:00:09"
	if got := strings.Join(m.xcalls, ","); got != want {
		t.Fatalf("calls %s, want %s", got, want)
	}
	if len(m.links) != 0 || len(e.weftd.holding()) != 0 || len(e.states()) != 0 {
		t.Fatalf("after DEL: links %v, weftd holds %v, states %v", m.links, e.weftd.holding(), e.states())
	}
}

// Every failure rolls back: a failed AddExclusive removes the link and gives the address back; a failed link gives
// the address back without moving anything; a datapath without member links refuses.
func TestMemberAddRollsBack(t *testing.T) {
	e, m := memberEnv(t)
	m.addErr = errors.New("no ENI with that MAC")
	if err := e.p.Add(e.args("m2", e.conf(nil))); err == nil || !strings.Contains(err.Error(), "no ENI with that MAC") {
		t.Fatalf("ADD: %v", err)
	}
	if got := strings.Join(m.xcalls, ","); len(m.links) != 0 || len(e.weftd.holding()) != 0 || !strings.HasSuffix(got, "unlink 00:16:3e:00:00:09") {
		t.Fatalf("after a failed AddExclusive: links %v, weftd holds %v, calls %s", m.links, e.weftd.holding(), got)
	}
	m.addErr, m.xcalls = nil, nil
	m.ensureErr = errors.New("operation not supported")
	err := e.p.Add(e.args("m3", e.conf(nil)))
	if err == nil || !strings.Contains(err.Error(), "operation not supported") || !strings.Contains(err.Error(), "Backend.trunk_link") {
		t.Fatalf("ADD with a failing link: %v", err)
	}
	if len(e.weftd.holding()) != 0 || len(m.xcalls) != 1 {
		t.Fatalf("after a failed link: weftd holds %v, calls %v", e.weftd.holding(), m.xcalls)
	}
	e.p.Datapath = m.fakeExclusive
	if err := e.p.Add(e.args("m4", e.conf(nil))); err == nil || !strings.Contains(err.Error(), "trunk member ENI") || len(e.weftd.holding()) != 0 {
		t.Fatalf("ADD with a datapath without member links: %v, weftd holds %v", err, e.weftd.holding())
	}
}
