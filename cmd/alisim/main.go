// Command alisim is a local Alibaba Cloud for weft's tests and for users trying provisioning scripts without an
// account: the VPC OpenAPI (signature v1, as the real alibaba-cloud-sdk-go sends it), an admin endpoint, a state
// file, and an instance metadata server. Started with no arguments it serves a documented default world on
// loopback and prints the access key pair to use.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/flagutil"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "alisim:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:8900", "address of the OpenAPI endpoint (and /admin/); loopback unless --allow-remote-admin")
	allowRemote := flag.Bool("allow-remote-admin", false, "serve on a non-loopback --listen although the unauthenticated /admin/ API is then "+
		"reachable from other hosts and /admin/state returns every secret")
	mdListen := flag.String("metadata-listen", "", "address of the metadata server (e.g. 100.100.100.200:80 inside a namespace); off when empty")
	mdInstance := flag.String("metadata-instance", "i-alisim0001", "instance whose metadata the metadata server answers with")
	topology := flag.String("topology", "", "JSON topology (the state format, see README) to start from instead of the default world")
	stateFile := flag.String("state", "", "state file: loaded at start when it exists, rewritten after every change")
	pending := flag.Duration("entry-pending", sim.DefaultTiming.EntryPending, "how long a new route entry stays Pending")
	deleting := flag.Duration("entry-deleting", sim.DefaultTiming.EntryDeleting, "how long a deleted route entry stays Deleting")
	gap := flag.Duration("write-gap", sim.DefaultTiming.WriteGap, "minimum spacing of writes to one route table (closer: TaskConflict)")
	eniTransition := flag.Duration("eni-transition", sim.DefaultTiming.ENITransition, "how long an ENI stays Attaching, Detaching or Deleting")
	mdLag := flag.Duration("metadata-lag", time.Second, "how long instance metadata trails the API for ENIs and addresses, both ways")
	var limits, faults []string
	flag.Var(flagutil.Repeated(&limits), "limit", `throttling per action, ACTION=RATE:BURST (e.g. "*=20:40", "CreateRouteEntries=2:2"); repeatable`)
	flag.Var(flagutil.Repeated(&faults), "fault", `fault per action, ACTION=[after:]CODE:RATE[,...][@LATENCY]: CODE refuses the call before it runs, `+
		`after:CODE applies it and then loses the reply; CODE "reset" drops the connection unanswered `+
		`(e.g. "CreateRouteEntries=Throttling:0.2,after:InternalError:0.1,after:reset:0.1@50ms"); repeatable`)
	fabric := flag.String("fabric", "", "fabric mode (root): build namespaces <prefix>-vpc and <prefix>-<instance> that carry real traffic")
	flag.Parse()
	if err := checkListen(*listen, *allowRemote); err != nil {
		return err
	}
	if *allowRemote {
		fmt.Fprintf(os.Stderr, "alisim: warning: --allow-remote-admin: /admin/ on %s is unauthenticated and /admin/state returns every secret\n", *listen)
	}

	var st *sim.State
	var err error
	switch {
	case *stateFile != "" && exists(*stateFile):
		if st, err = sim.LoadState(*stateFile); err != nil {
			return err
		}
	case *topology != "":
		if st, err = sim.LoadState(*topology); err != nil {
			return fmt.Errorf("--topology: %w", err)
		}
	default:
		st = sim.DefaultState()
	}
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, d := range map[string]time.Duration{"entry-pending": *pending, "entry-deleting": *deleting, "write-gap": *gap,
		"eni-transition": *eniTransition, "metadata-lag": *mdLag} {
		if d < 0 {
			return fmt.Errorf("--%s: %s is negative", name, d)
		}
	}
	if set["entry-pending"] || st.Timing.EntryPending == 0 {
		st.Timing.EntryPending = *pending
	}
	if set["entry-deleting"] || st.Timing.EntryDeleting == 0 {
		st.Timing.EntryDeleting = *deleting
	}
	if set["write-gap"] || st.Timing.WriteGap == 0 {
		st.Timing.WriteGap = *gap
	}
	if set["eni-transition"] || st.Timing.ENITransition == 0 {
		st.Timing.ENITransition = *eniTransition
	}
	if err := st.Validate(); err != nil {
		return fmt.Errorf("world: %w", err)
	}
	w := sim.NewWorld(st, nil, *stateFile)
	srv := sim.NewServer(w)
	for _, l := range limits {
		action, lim, err := parseLimit(l)
		if err != nil {
			return err
		}
		srv.SetLimit(action, lim)
	}
	for _, f := range faults {
		action, flt, err := parseFault(f)
		if err != nil {
			return err
		}
		if err := srv.SetFault(action, flt); err != nil {
			return fmt.Errorf("--fault %q: %w", f, err)
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	servers := []*http.Server{{Handler: srv, ReadHeaderTimeout: 5 * time.Second}}
	go func() { _ = servers[0].Serve(ln) }()
	info := map[string]any{"endpoint": ln.Addr().String(), "regionId": st.RegionID}
	if len(st.AccessKeys) > 0 {
		// The key pair is printed on purpose: it only opens this emulator.
		info["accessKeyId"], info["accessKeySecret"] = st.AccessKeys[0].ID, st.AccessKeys[0].Secret
	}
	if *mdListen != "" {
		mln, err := net.Listen("tcp", *mdListen)
		if err != nil {
			return fmt.Errorf("--metadata-listen: %w", err)
		}
		md := sim.NewMetadata(w, *mdInstance)
		md.Lag = *mdLag
		ms := &http.Server{Handler: md, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, ms)
		go func() { _ = ms.Serve(mln) }()
		info["metadata"] = mln.Addr().String()
	}
	if *fabric != "" {
		fab, err := sim.NewFabric(w, *fabric)
		if err != nil {
			return fmt.Errorf("--fabric: %w", err)
		}
		defer fab.Close()
		fab.SetMetadataLag(*mdLag)
		go fab.Run(ctx, 200*time.Millisecond)
		info["fabric"] = map[string]any{"router": fab.Router, "instances": fab.NS}
	}
	b, _ := json.Marshal(info)
	fmt.Println(string(b))
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(sctx)
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return !errors.Is(err, os.ErrNotExist)
}

func parseLimit(s string) (string, sim.Limit, error) {
	action, spec, ok := strings.Cut(s, "=")
	r, b, ok2 := strings.Cut(spec, ":")
	rate, err1 := strconv.ParseFloat(r, 64)
	burst, err2 := strconv.Atoi(b)
	if !ok || !ok2 || action == "" || err1 != nil || err2 != nil || rate < 0 || burst < 1 {
		return "", sim.Limit{}, fmt.Errorf("--limit %q: expected ACTION=RATE:BURST with RATE >= 0 and BURST >= 1", s)
	}
	return action, sim.Limit{Rate: rate, Burst: burst}, nil
}

// parseFault reads ACTION=[before:|after:]CODE:RATE[,...][@LATENCY]. A code without a prefix strikes before the
// call runs (the original syntax); "after:" lets the call change the state and then loses its reply.
func parseFault(s string) (string, sim.Fault, error) {
	const syntax = "expected ACTION=[after:]CODE:RATE[,[after:]CODE:RATE...][@LATENCY] with RATE in 0..1"
	action, spec, ok := strings.Cut(s, "=")
	if !ok || action == "" {
		return "", sim.Fault{}, fmt.Errorf("--fault %q: %s", s, syntax)
	}
	f := sim.Fault{Errors: map[string]float64{}, After: map[string]float64{}}
	if codes, lat, has := strings.Cut(spec, "@"); has {
		d, err := time.ParseDuration(lat)
		if err != nil {
			return "", sim.Fault{}, fmt.Errorf("--fault %q: latency %q: %v (%s)", s, lat, err, syntax)
		}
		f.Latency, spec = d, codes
	}
	for _, part := range strings.Split(spec, ",") {
		if part == "" {
			continue
		}
		into := f.Errors
		if rest, ok := strings.CutPrefix(part, "after:"); ok {
			into, part = f.After, rest
		} else if rest, ok := strings.CutPrefix(part, "before:"); ok {
			part = rest
		}
		code, r, ok := strings.Cut(part, ":")
		rate, err := strconv.ParseFloat(r, 64)
		if !ok || code == "" || err != nil || !(rate >= 0 && rate <= 1) {
			return "", sim.Fault{}, fmt.Errorf("--fault %q: %q: %s", s, part, syntax)
		}
		into[code] = rate
	}
	if len(f.Errors) == 0 && len(f.After) == 0 && f.Latency == 0 {
		return "", sim.Fault{}, fmt.Errorf("--fault %q: nothing to inject: %s", s, syntax)
	}
	if err := f.Validate(); err != nil {
		return "", sim.Fault{}, fmt.Errorf("--fault %q: %w", s, err)
	}
	return action, f, nil
}

// checkListen refuses a --listen address other hosts can reach unless allowRemote: /admin/ answers whoever
// connects, and /admin/state returns every access key secret and STS token of the world.
func checkListen(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %v (want HOST:PORT, e.g. 127.0.0.1:8900)", addr, err)
	}
	if allowRemote || host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--listen %q is not a loopback address: the unauthenticated admin API (/admin/) would be reachable "+
		"from other hosts and /admin/state returns every secret; listen on 127.0.0.1:PORT, or pass --allow-remote-admin to serve it anyway", addr)
}
