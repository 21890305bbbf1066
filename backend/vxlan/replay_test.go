package vxlan

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/backend/backendtest"
	"github.com/weftnet/weft/subnet"
)

// replayNode is a dual-stack node whose vxlan network is registered but not running: the test drives its
// reconcile directly, one peer set at a time. Its own lease is 10.5.1.0/24 + fd00:5:0:1::/64.
func replayNode(t *testing.T, backendConf string) (*backendtest.Node, *network) {
	t.Helper()
	n := backendtest.NewNode(t, "10.9.0.2/24", "fd00:9::2/64")
	f := fake(t, `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/56","Backend":`+backendConf+`}`)
	f.AddLease(subnet.Lease{EnableIPv4: true, EnableIPv6: true, Subnet: netip.MustParsePrefix("10.5.1.0/24"),
		IPv6Subnet: netip.MustParsePrefix("fd00:5:0:1::/64"),
		Attrs: subnet.LeaseAttrs{PublicIP: netip.MustParseAddr("10.9.0.2"), PublicIPv6: netip.MustParseAddr("fd00:9::2"),
			BackendType: Name}})
	sm := f.Manager()
	cfg, _ := sm.GetNetworkConfig(context.Background())
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

// kernelState renders everything the vxlan backend manages on a node: both families' routes on any link, the
// permanent neighbours and the FDB of both devices.
func kernelState(t *testing.T, n *backendtest.Node, nw *network) []string {
	t.Helper()
	var out []string
	add := func(what string, lines []string) {
		for _, l := range lines {
			out = append(out, what+" "+l)
		}
	}
	add("route4", n.Routes(t, unix.AF_INET, 0))
	add("route6", n.Routes(t, unix.AF_INET6, 0))
	for _, d := range []*device{nw.v4, nw.v6} {
		for _, l := range n.NeighTable(t, d.link.Index, d.family) {
			if strings.HasSuffix(l, " PERMANENT") { // IPv6 multicast entries (NOARP) are the kernel's
				out = append(out, "neigh "+d.link.Name+" "+l)
			}
		}
		add("fdb "+d.link.Name, n.FDB(t, d.link.Index))
	}
	return out
}

// replayPeer is one node of the replay's pool, in the variant an event gave it.
type replayPeer struct {
	mac, pub, pub6 int // which VtepMAC / IPv4 / IPv6 public address (0: on eth0's link, 1: elsewhere)
	v4Only         bool
	malformed      bool // BackendData is not a vxlan lease object
	foreign        bool // BackendType is host-gw
}

func (p replayPeer) lease(i int) subnet.Lease {
	pubs := []string{"10.9.0.%d", "10.77.0.%d"}
	pubs6 := []string{"fd00:9::%x", "fd00:77::%x"}
	l := subnet.Lease{EnableIPv4: true, Subnet: netip.MustParsePrefix(fmt.Sprintf("10.5.%d.0/24", 10+i)),
		Attrs: subnet.LeaseAttrs{BackendType: Name, PublicIP: netip.MustParseAddr(fmt.Sprintf(pubs[p.pub], 10+i)),
			BackendData: json.RawMessage(fmt.Sprintf(`{"VNI":1,"VtepMAC":"0e:00:00:00:%02x:%02x"}`, p.mac, i))}}
	if p.malformed {
		l.Attrs.BackendData = json.RawMessage(`{"VNI":1,"VtepMAC":`)
	}
	if p.foreign {
		l.Attrs.BackendType = "host-gw"
	}
	if !p.v4Only {
		l.EnableIPv6, l.IPv6Subnet = true, netip.MustParsePrefix(fmt.Sprintf("fd00:5:0:%x::/64", 0x10+i))
		l.Attrs.PublicIPv6 = netip.MustParseAddr(fmt.Sprintf(pubs6[p.pub6], 0x10+i))
		l.Attrs.BackendV6Data = json.RawMessage(fmt.Sprintf(`{"VNI":1,"VtepMAC":"0e:00:00:01:%02x:%02x"}`, p.mac, i))
	}
	return l
}

// replayEvents plays random lease events on a pool of peers and returns, after each, the peer set the lease
// watch would hold (the key of a peer does not change across updates: its subnets stay).
func replayEvents(r *rand.Rand, pool, steps int) (sets []backend.Peers, log []string) {
	cur := map[int]replayPeer{}
	removed := map[int]bool{}
	fresh := func() replayPeer {
		return replayPeer{mac: r.Intn(2), pub: r.Intn(2), pub6: r.Intn(2), v4Only: r.Intn(4) == 0,
			malformed: r.Intn(10) == 0, foreign: r.Intn(12) == 0}
	}
	for s := 0; s < steps; s++ {
		i := r.Intn(pool)
		p, present := cur[i]
		switch {
		case !present && removed[i]:
			cur[i] = fresh()
			log = append(log, fmt.Sprintf("re-add %d %+v", i, cur[i]))
		case !present:
			cur[i] = fresh()
			log = append(log, fmt.Sprintf("add %d %+v", i, cur[i]))
		default:
			switch r.Intn(4) {
			case 0:
				delete(cur, i)
				removed[i] = true
				log = append(log, fmt.Sprintf("remove %d", i))
				goto snapshot
			case 1:
				p.mac = 1 - p.mac
				p.malformed = false
			case 2:
				p.pub = 1 - p.pub
			case 3:
				p.pub6 = 1 - p.pub6
			}
			cur[i] = p
			log = append(log, fmt.Sprintf("update %d %+v", i, p))
		}
	snapshot:
		set := backend.Peers{}
		for i, p := range cur {
			l := p.lease(i)
			set[l.Key()] = l
		}
		sets = append(sets, set)
	}
	return sets, log
}

// TestReplayEqualsFinalSet plays random peer events (add, update of the VtepMAC or a public address, remove,
// re-add) through the reconcile and proves the kernel ends where one reconcile of the final peer set puts a fresh
// node. Each seed is in the subtest's name; rerun one with -run 'TestReplayEqualsFinalSet/<conf>/seed=<n>'.
func TestReplayEqualsFinalSet(t *testing.T) {
	seeds := []int64{1, 2, 3, 4, 5, time.Now().UnixNano() % 1_000_000}
	for _, conf := range []struct{ name, json string }{
		{"vxlan", `{"Type":"vxlan"}`},
		{"directrouting", `{"Type":"vxlan","DirectRouting":true}`},
	} {
		t.Run(conf.name, func(t *testing.T) {
			for _, seed := range seeds {
				t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
					sets, log := replayEvents(rand.New(rand.NewSource(seed)), 6, 40)
					n, nw := replayNode(t, conf.json)
					for i, set := range sets {
						if err := nw.reconcile(set); err != nil {
							t.Fatalf("seed %d, after event %d (%s): %v", seed, i, log[i], err)
						}
					}
					final := sets[len(sets)-1]
					ref, refNW := replayNode(t, conf.json)
					if err := refNW.reconcile(final); err != nil {
						t.Fatalf("seed %d: final set at once: %v", seed, err)
					}
					want := kernelState(t, ref, refNW)
					if len(final) > 0 && len(want) == 0 {
						t.Fatalf("seed %d: %d peers gave no kernel state at all", seed, len(final))
					}
					got := kernelState(t, n, nw)
					if strings.Join(got, "\n") != strings.Join(want, "\n") {
						t.Errorf("seed %d: after the events\n  %s\nthe kernel holds\n  %s\nbut the final set at once gives\n  %s",
							seed, strings.Join(log, "\n  "), strings.Join(got, "\n  "), strings.Join(want, "\n  "))
					}
				})
			}
		})
	}
}
