package hostgw

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/backend/backendtest"
	"github.com/weftnet/weft/subnet"
	"github.com/weftnet/weft/subnet/subnettest"
)

// replayNode is a dual-stack node whose host-gw network is registered but not running: the test drives its
// reconcile directly. Its own lease is 10.5.1.0/24 + fd00:5:0:1::/64.
func replayNode(t *testing.T) (*backendtest.Node, *network) {
	t.Helper()
	n := backendtest.NewNode(t, "10.9.0.2/24", "fd00:9::2/64")
	cfg, err := subnet.ParseConfig([]byte(`{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/56","Backend":{"Type":"host-gw"}}`))
	if err != nil {
		t.Fatal(err)
	}
	f := subnettest.NewFake(cfg)
	f.AddLease(peer("10.5.1.0/24", "10.9.0.2", "fd00:5:0:1::/64", "fd00:9::2"))
	sm := f.Manager()
	cfg, _ = sm.GetNetworkConfig(context.Background())
	b, err := backend.New(Name, backend.Deps{SubnetManager: sm, ExtIface: n.Ext, Netlink: n.H})
	if err != nil {
		t.Fatal(err)
	}
	nw, err := b.RegisterNetwork(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n, nw.(*network)
}

// replayPeer is one node of the replay's pool, in the variant an event gave it.
type replayPeer struct {
	pub, pub6 int // 0: on eth0's link, 1: elsewhere (refused)
	v4Only    bool
	foreign   bool
}

func (p replayPeer) lease(i int) subnet.Lease {
	pubs, pubs6 := []string{"10.9.0.%d", "10.77.0.%d"}, []string{"fd00:9::%x", "fd00:77::%x"}
	v6, pub6 := fmt.Sprintf("fd00:5:0:%x::/64", 0x10+i), fmt.Sprintf(pubs6[p.pub6], 0x10+i)
	if p.v4Only {
		v6, pub6 = "", ""
	}
	l := peer(fmt.Sprintf("10.5.%d.0/24", 10+i), fmt.Sprintf(pubs[p.pub], 10+i), v6, pub6)
	if p.foreign {
		l.Attrs.BackendType = "vxlan"
	}
	return l
}

func replayEvents(r *rand.Rand, pool, steps int) (sets []backend.Peers, log []string) {
	cur, removed := map[int]replayPeer{}, map[int]bool{}
	fresh := func() replayPeer {
		return replayPeer{pub: r.Intn(2), pub6: r.Intn(2), v4Only: r.Intn(4) == 0, foreign: r.Intn(10) == 0}
	}
	for s := 0; s < steps; s++ {
		i := r.Intn(pool)
		p, present := cur[i]
		switch {
		case !present:
			what := "add"
			if removed[i] {
				what = "re-add"
			}
			cur[i] = fresh()
			log = append(log, fmt.Sprintf("%s %d %+v", what, i, cur[i]))
		case r.Intn(3) == 0:
			delete(cur, i)
			removed[i] = true
			log = append(log, fmt.Sprintf("remove %d", i))
		default:
			if r.Intn(2) == 0 {
				p.pub = 1 - p.pub
			} else {
				p.pub6 = 1 - p.pub6
			}
			cur[i] = p
			log = append(log, fmt.Sprintf("update %d %+v", i, p))
		}
		set := backend.Peers{}
		for i, p := range cur {
			l := p.lease(i)
			set[l.Key()] = l
		}
		sets = append(sets, set)
	}
	return sets, log
}

// onlyOffLink fails the test unless every error of a reconcile is an off-link peer's (expected in the replay).
func onlyOffLink(t *testing.T, seed int64, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasSuffix(line, "not on-link") {
			t.Fatalf("seed %d, %s: %v", seed, what, err)
		}
	}
}

// TestReplayEqualsFinalSet plays random peer events (add, update of a public address, remove, re-add) through
// the reconcile and proves the kernel ends where one reconcile of the final peer set puts a fresh node. Each
// seed is in the subtest's name; rerun one with -run 'TestReplayEqualsFinalSet/seed=<n>'.
func TestReplayEqualsFinalSet(t *testing.T) {
	for _, seed := range []int64{1, 2, 3, 4, 5, time.Now().UnixNano() % 1_000_000} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			sets, log := replayEvents(rand.New(rand.NewSource(seed)), 6, 40)
			n, nw := replayNode(t)
			for i, set := range sets {
				onlyOffLink(t, seed, fmt.Sprintf("after event %d (%s)", i, log[i]), nw.reconcile(set))
			}
			final := sets[len(sets)-1]
			ref, refNW := replayNode(t)
			onlyOffLink(t, seed, "final set at once", refNW.reconcile(final))
			state := func(n *backendtest.Node) []string {
				return append(n.Routes(t, unix.AF_INET, 0), n.Routes(t, unix.AF_INET6, 0)...)
			}
			got, want := state(n), state(ref)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("seed %d: after the events\n  %s\nthe kernel holds\n  %s\nbut the final set at once gives\n  %s",
					seed, strings.Join(log, "\n  "), strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			if fmt.Sprint(nw.warned) != fmt.Sprint(refNW.warned) {
				t.Errorf("seed %d: off-link peers remembered %v, the final set at once gives %v", seed, nw.warned, refNW.warned)
			}
		})
	}
}

// An off-link peer is an error of every reconcile but logged once: it is remembered (by peer and gateway, so
// each family on its own) until it is routable or gone.
func TestOffLinkPeerRemembered(t *testing.T) {
	_, nw := replayNode(t)
	off := peer("10.5.9.0/24", "10.77.0.9", "fd00:5:0:9::/64", "fd00:9::9") // IPv4 off-link, IPv6 on-link
	for run := 1; run <= 2; run++ {
		err := nw.reconcile(backend.Peers{off.Key(): off})
		if err == nil || err.Error() != "peer 10.5.9.0-24&fd00:5:0:9::-64: gateway 10.77.0.9 not on-link" {
			t.Fatalf("run %d: err %v, want only the IPv4 gateway refused", run, err)
		}
		if fmt.Sprint(nw.warned) != "map[10.5.9.0-24&fd00:5:0:9::-64 10.77.0.9:true]" {
			t.Fatalf("run %d: remembered %v", run, nw.warned)
		}
	}
	if err := nw.reconcile(backend.Peers{}); err != nil || len(nw.warned) != 0 {
		t.Fatalf("peer gone: err %v, still remembered %v", err, nw.warned)
	}
}
