// Command alivpc measures route programming at scale against alisim (in process, over HTTP on loopback, through
// the real SDK): N nodes (synthetic, one instance each), one real ali-vpc route controller, until every entry is
// Available; then the same with the strategy of upstream flannel's removed ali-vpc backend, where each node
// creates its own entry (retrying while the table is busy) and polls it until Available. It reports the time and
// API calls by action for both, their ratio, and the controller's steady-state calls per hour.
//
// alisim's delays (3 s Pending, 1 s between writes) are scaled by -time-scale so the per-node run finishes in
// minutes; both strategies run under the same scale and the reported times are scaled back to real seconds.
//
//	go run ./bench/alivpc -nodes 1000 -time-scale 0.02 -rate 20     (make bench-alivpc)
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/weftnet/weft/backend/alivpc"
	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
)

var actions = []string{"DescribeRouteTableList", "DescribeRouteEntryList", "CreateRouteEntry", "CreateRouteEntries", "DeleteRouteEntries"}

func main() {
	nodes := flag.Int("nodes", 1000, "nodes (route entries)")
	scale := flag.Float64("time-scale", 0.02, "multiplier on alisim's delays (1 = the real service's 3 s Pending, 1 s write gap)")
	rate := flag.Float64("rate", 20, "alisim throttling: calls per second per action (burst the same)")
	resync := flag.Duration("resync", time.Minute, "controller resync period, for the steady-state figure")
	flag.Parse()
	klog.SetOutput(os.Stderr)
	klog.LogToStderr(false)

	w1, t1, c1 := run(*nodes, *scale, *rate, weft)
	fmt.Fprintf(os.Stderr, "weft done in %s (scaled)\n", t1)
	w2, t2, c2 := run(*nodes, *scale, *rate, perNode)
	fmt.Printf("ali-vpc route programming, %d nodes, alisim delays x%.3g (times scaled back to real seconds), throttling %.0f calls/s per action\n",
		*nodes, *scale, *rate)
	fmt.Printf("command: go run ./bench/alivpc -nodes %d -time-scale %g -rate %g   (make bench-alivpc)\n\n", *nodes, *scale, *rate)
	fmt.Printf("%-34s %14s %14s %10s\n", "", "weft (batched)", "per-node", "ratio")
	fmt.Printf("%-34s %14.1f %14.1f %10.3f\n", "time to all Available (s)", t1.Seconds() / *scale, t2.Seconds() / *scale, t1.Seconds()/t2.Seconds())
	total1, total2 := 0, 0
	for _, a := range actions {
		if c1[a] == 0 && c2[a] == 0 {
			continue
		}
		fmt.Printf("%-34s %14d %14d\n", "calls "+a, c1[a], c2[a])
		total1 += c1[a]
		total2 += c2[a]
	}
	fmt.Printf("%-34s %14d %14d %10.3f\n", "calls total (incl. refused)", total1, total2, float64(total1)/float64(total2))
	fmt.Printf("%-34s %14d %14d\n", "entries Available", w1, w2)
	steady := steadyState(*nodes, *scale)
	fmt.Printf("\nsteady state, weft: %d calls per resync pass with %d nodes -> %.0f calls/hour at a %s resync\n",
		steady, *nodes, float64(steady)*float64(time.Hour)/float64(*resync), *resync)
	fmt.Println("(the per-node strategy makes no calls once routed: it never re-reads, repairs or garbage-collects)")
}

type strategy func(ctx context.Context, api *aliyun.Client, newClient func() *aliyun.Client, wants []alivpc.Want, poll time.Duration) error

// world builds alisim with n instances (in a /20 vSwitch) and a table quota of 1000.
func world(n int, scale, rate float64) (*sim.World, *sim.Server, *httptest.Server) {
	st := sim.DefaultState()
	st.RouteTables[0].Quota = 1000
	st.VSwitches = append(st.VSwitches, &sim.VSwitch{ID: "vsw-bench", VPCID: "vpc-alisim0001", Zone: "cn-hangzhou-h",
		CIDR: "192.168.16.0/20", RouteTableID: "vtb-alisim0001"})
	st.Instances = nil
	for i := 0; i < n; i++ {
		st.Instances = append(st.Instances, &sim.Instance{ID: fmt.Sprintf("i-bench%05d", i), Type: "ecs.g6.large", Zone: "cn-hangzhou-h",
			VSwitchID: "vsw-bench", PrimaryIP: netip.AddrFrom4([4]byte{192, 168, byte(16 + i/250), byte(1 + i%250)}).String(),
			MAC: fmt.Sprintf("00:16:3e:01:%02x:%02x", i/256, i%256), Status: "Running"})
	}
	w := sim.NewWorld(st, nil, "")
	d := sim.DefaultTiming
	w.SetTiming(sim.Timing{EntryPending: time.Duration(float64(d.EntryPending) * scale), EntryDeleting: time.Duration(float64(d.EntryDeleting) * scale),
		WriteGap: time.Duration(float64(d.WriteGap) * scale)})
	srv := sim.NewServer(w)
	srv.SetLimit("*", sim.Limit{Rate: rate, Burst: int(rate)})
	return w, srv, httptest.NewServer(srv)
}

func client(hs *httptest.Server, attempts int) *aliyun.Client {
	c, err := aliyun.NewClient(aliyun.Config{Region: "cn-hangzhou", VPCEndpoint: strings.TrimPrefix(hs.URL, "http://"), Scheme: "HTTP",
		Credentials: aliyun.Static{AccessKeyID: sim.DefaultAccessKeyID, AccessKeySecret: sim.DefaultAccessKeySecret},
		Attempts:    attempts, RatePerSecond: 1000, BackoffBase: 50 * time.Millisecond, BackoffCap: time.Second})
	if err != nil {
		panic(err)
	}
	return c
}

func wantsFor(n int) []alivpc.Want {
	out := make([]alivpc.Want, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, alivpc.Want{Node: fmt.Sprintf("node%d", i), Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i / 256), byte(i % 256), 0}), 24),
			Instance: fmt.Sprintf("i-bench%05d", i)})
	}
	return out
}

func run(n int, scale, rate float64, s strategy) (int, time.Duration, map[string]int) {
	w, srv, hs := world(n, scale, rate)
	defer hs.Close()
	poll := time.Duration(float64(time.Second) * scale)
	start := time.Now()
	if err := s(context.Background(), client(hs, 8), func() *aliyun.Client { return client(hs, 1) }, wantsFor(n), poll); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	took := time.Since(start)
	calls := map[string]int{}
	for _, a := range actions {
		calls[a] = srv.Calls(a)
	}
	avail := 0
	for _, e := range w.CustomEntries("vtb-alisim0001") {
		if !e.ReadyAt.IsZero() && time.Now().After(e.ReadyAt) && e.DeleteAt.IsZero() {
			avail++
		}
	}
	return avail, took, calls
}

// weft runs one controller until every node is routed.
func weft(ctx context.Context, api *aliyun.Client, _ func() *aliyun.Client, wants []alivpc.Want, poll time.Duration) error {
	c := &alivpc.Controller{API: api, VPC: "vpc-alisim0001", Tables: []string{"vtb-alisim0001"}, Owner: "weft:bench", Poll: poll}
	for pass := 0; pass < 50; pass++ {
		res, _ := c.Reconcile(ctx, wants)
		routed := 0
		for _, st := range res.Nodes {
			if st.Routed {
				routed++
			}
		}
		if routed == len(wants) {
			return nil
		}
	}
	return fmt.Errorf("weft: not converged after 50 passes")
}

// perNode is the removed upstream backend's approach, with the retries it lacked (without them most nodes fail
// outright on a busy table): every node creates its own entry, retrying while refused, then polls it.
func perNode(ctx context.Context, _ *aliyun.Client, newClient func() *aliyun.Client, wants []alivpc.Want, poll time.Duration) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(wants))
	for _, w := range wants {
		wg.Add(1)
		go func(w alivpc.Want) {
			defer wg.Done()
			cl := newClient()
			deadline := time.Now().Add(time.Hour)
			for {
				_, err := cl.CreateRouteEntry(ctx, aliyun.NewRouteEntry{TableID: "vtb-alisim0001", Dst: w.Dst, NextHopID: w.Instance})
				if err == nil || aliyun.Code(err) == "InvalidCIDRBlock.Duplicate" {
					break
				}
				if time.Now().After(deadline) {
					errs <- err
					return
				}
				time.Sleep(5 * poll) // a retry every 5 s (scaled): the gentlest per-node client one could write
			}
			for time.Now().Before(deadline) {
				e, err := cl.RouteEntryByDst(ctx, "vtb-alisim0001", w.Dst) // one filtered call per poll
				if err == nil && e != nil && e.Status == "Available" {
					return
				}
				time.Sleep(5 * poll)
			}
			errs <- fmt.Errorf("%s never Available", w.Dst)
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	return nil
}

// steadyState counts one resync pass's calls once everything is routed.
func steadyState(n int, scale float64) int {
	_, srv, hs := world(n, scale, 1e6)
	defer hs.Close()
	c := &alivpc.Controller{API: client(hs, 8), VPC: "vpc-alisim0001", Tables: []string{"vtb-alisim0001"}, Owner: "weft:bench",
		Poll: time.Duration(float64(time.Second) * scale)}
	wants := wantsFor(n)
	_, _ = c.Reconcile(context.Background(), wants)
	before := 0
	for _, a := range actions {
		before += srv.Calls(a)
	}
	_, _ = c.Reconcile(context.Background(), wants)
	after := 0
	for _, a := range actions {
		after += srv.Calls(a)
	}
	return after - before
}
