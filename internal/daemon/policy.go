package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"

	"github.com/weftnet/weft/internal/policy/cniwait"
	"github.com/weftnet/weft/internal/policy/engine"
	"github.com/weftnet/weft/internal/policy/ruleset"
	"github.com/weftnet/weft/subnet"
)

// policyOn says whether this node enforces NetworkPolicy: Kubernetes mode (the policies are API objects), the
// flag and net-conf.json's EnableNetworkPolicy both on.
func policyOn(o *Options, cfg *subnet.Config) bool {
	return o.KubeSubnetMgr && o.NetworkPolicy && cfg.NetworkPolicy
}

// newPolicy makes and runs the NetworkPolicy engine (internal/policy/engine) when policyOn, before the backend
// is built (a backend that answers CNI ADDs itself waits on it); servePolicy then feeds it and opens its socket.
// Off, it removes what an earlier run left: the table (stale rules would go on enforcing) and the socket (ADDs
// would wait on it).
func newPolicy(ctx context.Context, wg *sync.WaitGroup, reg prometheus.Registerer, o *Options, cfg *subnet.Config, node string) (*engine.Engine, error) {
	sock := cniwait.SocketPath(o.SubnetFile)
	if !policyOn(o, cfg) {
		if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
			klog.Warningf("network policy is off: remove %s: %v", sock, err)
		}
		if nft, err := knftables.New(knftables.InetFamily, ruleset.Table); err == nil {
			tx := nft.NewTransaction()
			tx.Add(&knftables.Table{}) // so that the delete finds it (nft's destroy needs nft 1.0.8)
			tx.Delete(&knftables.Table{})
			if err := nft.Run(ctx, tx); err != nil {
				klog.Warningf("network policy is off: remove table inet %s: %v", ruleset.Table, err)
			}
		}
		if o.KubeSubnetMgr {
			klog.Info("network policy: off (--network-policy or net-conf.json EnableNetworkPolicy)")
		}
		return nil, nil
	}
	nft, err := knftables.New(knftables.InetFamily, ruleset.Table)
	if err != nil {
		return nil, fmt.Errorf("network policy: nftables: %w (turn it off with --network-policy=false if this node cannot run nft)", err)
	}
	bridgedTrafficFiltered()
	e := engine.New(engine.Config{Node: node, IPv6: cfg.EnableIPv6, Log: slog.Default().With("component", "network-policy")}, nft)
	if err := reg.Register(e); err != nil {
		return nil, fmt.Errorf("network policy: metrics: %w", err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = e.Run(ctx) }()
	return e, nil
}

// servePolicy feeds the engine from the API (informers, waited for, so the node is not ready and writes no
// subnet.env before it enforces) and opens the socket CNI ADDs wait on (cniwait, beside the subnet file).
func servePolicy(ctx context.Context, wg *sync.WaitGroup, ready *readiness, e *engine.Engine, o *Options, kube kubernetes.Interface) error {
	ready.set(false, "network policy: waiting for the pod, namespace and network policy informers")
	e.SetGetter(engine.Getter(kube))
	if err := engine.Watch(ctx, kube, e); err != nil {
		return err
	}
	sock := cniwait.SocketPath(o.SubnetFile)
	srv := &cniwait.Server{Ensure: e.Ensure, Unknown: func(err error) bool { return errors.Is(err, engine.ErrNoSuchPod) }}
	l, err := cniwait.Listen(sock)
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, l); err != nil {
			klog.Errorf("%v: CNI ADDs on this node fail until weftd restarts", err)
		}
	}()
	klog.Infof("network policy: enforcing (table inet %s; CNI ADDs wait on %s)", ruleset.Table, sock)
	return nil
}

// bridgedTrafficFiltered makes bridged IPv4 and IPv6 traffic (pods of this node on cni0) pass the inet forward
// hook, where the policy table sees it (br_netfilter's bridge-nf-call-iptables / -ip6tables, per network
// namespace); without br_netfilter same-node pod-to-pod traffic on a bridge is not filtered, which is said.
func bridgedTrafficFiltered() {
	for _, f := range []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables"} {
		path := "/proc/sys/net/bridge/" + f
		if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
			klog.Warningf("network policy: %s: %v: traffic between pods on this node's bridge is not filtered (load br_netfilter)", path, err)
		}
	}
}
