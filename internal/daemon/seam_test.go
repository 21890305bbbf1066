package daemon_test

// The seam for backends without a per-node subnet (pods on ENIs), proven with a backend that has none: it runs
// under the real daemon wiring (this test binary re-executed as weftd inside a lab node namespace, against a
// real etcd), becomes ready, writes no subnet.env, keeps no lease and gets exactly the rules it asks for.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/klog/v2"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/internal/daemon"
	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/subnet"
)

const seamBackendName = "seam-test"

func init() { backend.RegisterSubnetless(seamBackendName, newSeamBackend) }

// seamConfig is the test backend's Backend object: the rule inputs it asks for.
type seamConfig struct {
	Network      string
	NoMasquerade []string
}

type seamBackend struct{ deps backend.Deps }

func newSeamBackend(deps backend.Deps) (backend.Backend, error) { return &seamBackend{deps: deps}, nil }

type seamNetwork struct {
	deps    backend.Deps
	traffic backend.Traffic
	synced  atomic.Bool
}

func (b *seamBackend) RegisterNetwork(_ context.Context, sc *subnet.Config) (backend.Network, error) {
	var c seamConfig
	if err := json.Unmarshal(sc.Backend, &c); err != nil {
		return nil, err
	}
	n := &seamNetwork{deps: b.deps}
	if c.Network != "" {
		n.traffic.Network = netip.MustParsePrefix(c.Network)
	}
	for _, p := range c.NoMasquerade {
		n.traffic.NoMasquerade = append(n.traffic.NoMasquerade, netip.MustParsePrefix(p))
	}
	return n, nil
}

func (n *seamNetwork) Outputs() backend.Outputs { return backend.Outputs{Traffic: n.traffic} }

// Ready once Run has seen the first lease snapshot: the daemon must have started Run before /readyz is 200.
func (n *seamNetwork) Ready() (bool, string) {
	if !n.synced.Load() {
		return false, "seam-test: waiting for the lease snapshot"
	}
	return true, ""
}

func (n *seamNetwork) Run(ctx context.Context) {
	events := make(chan []subnet.Event, 1)
	go func() { _ = n.deps.SubnetManager.WatchLeases(ctx, events) }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
			n.synced.Store(true)
		}
	}
}

// TestMain makes this binary weftd (with the seam backend registered) when WEFT_SEAM_DAEMON is set.
func TestMain(m *testing.M) {
	if os.Getenv("WEFT_SEAM_DAEMON") == "" {
		os.Exit(m.Run())
	}
	fs := flag.NewFlagSet("weftd", flag.ExitOnError)
	var o daemon.Options
	o.AddFlags(fs)
	klog.InitFlags(fs)
	_ = fs.Parse(os.Args[1:])
	if err := o.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := daemon.Run(ctx, &o, fs); err != nil {
		fmt.Fprintln(os.Stderr, "weftd:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func TestSubnetlessBackendUnderTheDaemon(t *testing.T) {
	testenv.RequireRoot(t)
	tools := testenv.ToolsDir(t)
	testenv.Bin(t, "etcd")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, conf  string
		nat, filter []string // FLANNEL-POSTRTG / FLANNEL-FWD rules wanted ("" entries: the chain must not exist)
	}{
		{"no rules asked", `{"Backend":{"Type":"seam-test"}}`, nil, nil},
		{"a pod range, the VPC unmasqueraded",
			`{"Backend":{"Type":"seam-test","Network":"10.99.0.0/16","NoMasquerade":["192.168.0.0/16"]}}`,
			[]string{"-s 10.99.0.0/16 -d 192.168.0.0/16", "-s 10.99.0.0/16 ! -d 224.0.0.0/4", "! -s 10.99.0.0/16 -d 10.99.0.0/16"},
			[]string{"-s 10.99.0.0/16", "-d 10.99.0.0/16"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, err := lab.New(lab.Options{Nodes: 1, Dir: t.TempDir(), ToolsBin: tools})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(l.Down)
			if err := l.StartEtcd(); err != nil {
				t.Fatal(err)
			}
			if err := l.PutNetConfig(c.conf); err != nil {
				t.Fatal(err)
			}
			n := l.Nodes[0]
			if err := os.MkdirAll(n.Dir, 0o755); err != nil {
				t.Fatal(err)
			}
			const port = 18081
			p, err := l.Start(n.Name, filepath.Join(n.Dir, "weftd.log"), []string{"WEFT_SEAM_DAEMON=1"}, self,
				"--iface=eth0", "--subnet-file="+n.SubnetFile(), "--ip-masq", "--iptables-resync=1", "--ip-blackhole-route",
				"--etcd-endpoints="+l.EtcdURL, "--healthz-ip=127.0.0.1", fmt.Sprintf("--healthz-port=%d", port))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("weftd log:\n%s", p.Logs())
				}
				_ = p.Stop()
			})
			if err := lab.WaitFor(30*time.Second, "/readyz 200", func() (bool, error) {
				if p.Exited() {
					return false, fmt.Errorf("daemon exited")
				}
				code, body, err := n.Readyz(port)
				if err == nil && code != 200 {
					err = fmt.Errorf("%d %s", code, body)
				}
				return code == 200, err
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(n.SubnetFile()); !os.IsNotExist(err) {
				t.Errorf("subnet.env exists (%v): a backend without Env must not get one", err)
			}
			if out, err := l.Etcdctl("get", "--prefix", "--keys-only", "/coreos.com/network/subnets/"); err != nil || strings.TrimSpace(out) != "" {
				t.Errorf("leases in etcd %q (%v): the backend keeps none", out, err)
			}
			if routes := lab.MustIP(n.Name, "route", "show", "type", "blackhole"); strings.TrimSpace(routes) != "" {
				t.Errorf("blackhole routes %q without a lease", routes)
			}
			checkChain(t, n.Name, "nat", "FLANNEL-POSTRTG", c.nat)
			checkChain(t, n.Name, "filter", "FLANNEL-FWD", c.filter)
		})
	}
}

// ruleNoise is what iptables -S prints beside a rule's matches: the comment and the target.
var ruleNoise = regexp.MustCompile(` -m comment --comment "[^"]*"| -j .*$`)

// checkChain asserts the chain's rules (as iptables -S prints them, jump and comment stripped) are exactly want;
// want nil means the chain must not exist.
func checkChain(t *testing.T, ns, table, chain string, want []string) {
	t.Helper()
	out, err := lab.NSRun(ns, "iptables", "-w", "-t", table, "-S", chain)
	if want == nil {
		if err == nil {
			t.Errorf("%s %s exists although no rules were asked for:\n%s", table, chain, out)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s %s: %v", table, chain, err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "-A ") || strings.Contains(line, "-m mark") {
			continue // the chain's rules only; kube-proxy's mark rule is always first and not an input
		}
		line = ruleNoise.ReplaceAllString(line, "")
		got = append(got, strings.Join(strings.Fields(line)[2:], " "))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s %s rules:\n%s\nwant:\n%s\n(iptables -S:\n%s)", table, chain, strings.Join(got, "\n"), strings.Join(want, "\n"), out)
	}
}
