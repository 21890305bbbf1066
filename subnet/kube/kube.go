// Package kube is weft's Kubernetes subnet manager, compatible with upstream flanneld's --kube-subnet-mgr: a
// node's subnet is its spec.podCIDR (spec.podCIDRs in dual stack), net-conf.json is a file, and a node publishes
// its lease as annotations under a prefix (default flannel.alpha.coreos.com/):
//
//	kube-subnet-manager: "true"   backend-type   backend-data   backend-v6-data   public-ip   public-ipv6
//
// Peers are the nodes carrying kube-subnet-manager=true and a public address, read through one node informer;
// each watcher diffs the nodes' leases against what it last reported, so any change to either family is an
// update (upstream drops some dual-stack changes), a deleted node or a stripped annotation is a removal, and a
// node re-created with another pod CIDR is a removal plus an addition. All of a node's annotations are written
// in one merge patch through the nodes/status subresource, as upstream does, so upstream's ClusterRole
// (nodes get/list/watch, nodes/status patch, pods get) is enough; a node without any annotations is handled
// (upstream panics). public-ip-overwrite / public-ipv6-overwrite replace the published address;
// node-public-ip / node-public-ipv6 replace --public-ip (see NodePublicIPs). Once the backend is up, the node's
// NetworkUnavailable condition is set to False with reason FlannelIsUp.
package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/subnet"
)

// Options configure the manager; they map onto weftd's --kube-* flags.
type Options struct {
	Client                    kubernetes.Interface
	NodeName                  string
	NetConfPath               string
	AnnotationPrefix          string // default flannel.alpha.coreos.com; "/" appended when absent
	SetNodeNetworkUnavailable bool
	// CacheSyncTimeout bounds a watch's wait for the node informer's first full list (default 2 minutes).
	CacheSyncTimeout time.Duration
	// ContinueWhenCacheNotReady is upstream's CONT_WHEN_CACHE_NOT_READY=true: when the node informer has not
	// synced within CacheSyncTimeout, a watch logs it and waits on instead of failing. Upstream then carries on
	// with a partial node cache; a watch here keeps waiting for the full list, because its first batch is the
	// complete peer set the backends reconcile against, and a partial one would remove routes to the peers not
	// yet listed.
	ContinueWhenCacheNotReady bool
}

// defaultCacheSyncTimeout is the CacheSyncTimeout when unset.
const defaultCacheSyncTimeout = 2 * time.Minute

// Annotations are the annotation keys under one prefix.
type Annotations struct {
	KubeManaged, BackendType, BackendData, BackendV6Data, PublicIP, PublicIPv6 string
	PublicIPOverwrite, PublicIPv6Overwrite, NodePublicIP, NodePublicIPv6       string
}

// NewAnnotations builds the keys for prefix, appending "/" when it has none.
func NewAnnotations(prefix string) Annotations {
	if prefix == "" {
		prefix = "flannel.alpha.coreos.com"
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return Annotations{
		KubeManaged: prefix + "kube-subnet-manager", BackendType: prefix + "backend-type",
		BackendData: prefix + "backend-data", BackendV6Data: prefix + "backend-v6-data",
		PublicIP: prefix + "public-ip", PublicIPv6: prefix + "public-ipv6",
		PublicIPOverwrite: prefix + "public-ip-overwrite", PublicIPv6Overwrite: prefix + "public-ipv6-overwrite",
		NodePublicIP: prefix + "node-public-ip", NodePublicIPv6: prefix + "node-public-ipv6",
	}
}

// Manager implements subnet.Manager on the Kubernetes API.
type Manager struct {
	o   Options
	ann Annotations
	cfg *subnet.Config

	once     sync.Once
	informer cache.SharedIndexInformer
	stop     chan struct{}
	// syncTimedOut, when set (by tests), is called when a watch has waited CacheSyncTimeout in vain and waits on.
	syncTimedOut func()
}

var _ subnet.Manager = (*Manager)(nil)

// New reads and parses the net-conf file; a missing or malformed file is an error (weftd exits, as upstream).
func New(ctx context.Context, o Options) (*Manager, error) {
	if o.NodeName == "" {
		return nil, errors.New("kube subnet manager: the node name is empty (set NODE_NAME)")
	}
	data, err := os.ReadFile(o.NetConfPath)
	if err != nil {
		return nil, fmt.Errorf("--net-config-path: %w", err)
	}
	cfg, err := subnet.ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.NetConfPath, err)
	}
	if cfg.EnableIPv4 && !cfg.Network.IsValid() && cfg.PerNodeSubnets() {
		return nil, fmt.Errorf("%s: Network: required when EnableIPv4 is true", o.NetConfPath)
	}
	if cfg.EnableIPv6 && !cfg.IPv6Network.IsValid() && cfg.PerNodeSubnets() {
		return nil, fmt.Errorf("%s: IPv6Network: required when EnableIPv6 is true", o.NetConfPath)
	}
	m := &Manager{o: o, ann: NewAnnotations(o.AnnotationPrefix), cfg: cfg, stop: make(chan struct{})}
	go func() { <-ctx.Done(); close(m.stop) }()
	return m, nil
}

// Name implements subnet.Manager.
func (m *Manager) Name() string { return "kube" }

// GetNetworkConfig returns the parsed net-conf.json.
func (m *Manager) GetNetworkConfig(context.Context) (*subnet.Config, error) {
	c := *m.cfg
	return &c, nil
}

// NodePublicIPs returns the node-public-ip / node-public-ipv6 annotations of this node, which replace
// --public-ip / --public-ipv6 when set.
func (m *Manager) NodePublicIPs(ctx context.Context) (v4, v6 string, err error) {
	n, err := m.o.Client.CoreV1().Nodes().Get(ctx, m.o.NodeName, metav1.GetOptions{})
	if err != nil {
		return "", "", fmt.Errorf("get node %q: %w", m.o.NodeName, err)
	}
	return n.Annotations[m.ann.NodePublicIP], n.Annotations[m.ann.NodePublicIPv6], nil
}

// podCIDRs returns the node's IPv4 and IPv6 pod CIDRs.
func podCIDRs(n *corev1.Node) (v4, v6 netip.Prefix, err error) {
	list := n.Spec.PodCIDRs
	if len(list) == 0 && n.Spec.PodCIDR != "" {
		list = []string{n.Spec.PodCIDR}
	}
	for _, s := range list {
		p, perr := netip.ParsePrefix(s)
		if perr != nil {
			return v4, v6, fmt.Errorf("node %q: pod CIDR %q: %w", n.Name, s, perr)
		}
		if p.Addr().Is4() && !v4.IsValid() {
			v4 = p.Masked()
		} else if p.Addr().Is6() && !v6.IsValid() {
			v6 = p.Masked()
		}
	}
	return v4, v6, nil
}

// leaseFromNode builds a peer lease from a node's podCIDRs and annotations; ok is false for nodes that are not
// (yet) weft/flannel peers.
func (m *Manager) leaseFromNode(n *corev1.Node) (subnet.Lease, bool) {
	a := n.Annotations
	if a[m.ann.KubeManaged] != "true" {
		return subnet.Lease{}, false
	}
	v4, v6, err := podCIDRs(n)
	if err != nil {
		klog.V(2).Infof("ignoring node %s: %v", n.Name, err)
		return subnet.Lease{}, false
	}
	// Backend data that is not JSON cannot be decoded by the backend nor written back: the node is skipped, as a
	// malformed etcd lease is.
	for _, k := range []string{m.ann.BackendData, m.ann.BackendV6Data} {
		if s := a[k]; s != "" && !json.Valid([]byte(s)) {
			klog.V(2).Infof("ignoring node %s: annotation %s is not JSON", n.Name, k)
			return subnet.Lease{}, false
		}
	}
	l := subnet.Lease{NodeName: n.Name, Attrs: subnet.LeaseAttrs{BackendType: a[m.ann.BackendType]}}
	// A family counts only with both its pod CIDR and a usable public address: routes to an unknown address
	// cannot be programmed (upstream skips such a node too).
	if ip, err := netip.ParseAddr(a[m.ann.PublicIP]); m.cfg.EnableIPv4 && v4.IsValid() && err == nil && ip.Is4() {
		l.EnableIPv4, l.Subnet, l.Attrs.PublicIP = true, v4, ip
		if s := a[m.ann.BackendData]; s != "" {
			l.Attrs.BackendData = json.RawMessage(s)
		}
	}
	if ip, err := netip.ParseAddr(a[m.ann.PublicIPv6]); m.cfg.EnableIPv6 && v6.IsValid() && err == nil && ip.Is6() && !ip.Is4In6() && ip.Zone() == "" {
		l.EnableIPv6, l.IPv6Subnet, l.Attrs.PublicIPv6 = true, v6, ip
		if s := a[m.ann.BackendV6Data]; s != "" {
			l.Attrs.BackendV6Data = json.RawMessage(s)
		}
	}
	if !l.EnableIPv4 && !l.EnableIPv6 {
		return subnet.Lease{}, false
	}
	return l, true
}

// PreviousLease returns this node's published lease, if it has one (the VtepMAC survives restarts through it).
func (m *Manager) PreviousLease(ctx context.Context, _ *subnet.LeaseAttrs) (*subnet.Lease, error) {
	n, err := m.o.Client.CoreV1().Nodes().Get(ctx, m.o.NodeName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get node %q: %w", m.o.NodeName, err)
	}
	if l, ok := m.leaseFromNode(n); ok {
		return &l, nil
	}
	return nil, nil
}

// AcquireLease reads the node's podCIDR(s), checks them against the network and publishes the attributes.
func (m *Manager) AcquireLease(ctx context.Context, attrs *subnet.LeaseAttrs) (*subnet.Lease, error) {
	n, err := m.o.Client.CoreV1().Nodes().Get(ctx, m.o.NodeName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get node %q: %w", m.o.NodeName, err)
	}
	v4, v6, err := podCIDRs(n)
	if err != nil {
		return nil, err
	}
	l := &subnet.Lease{NodeName: m.o.NodeName, Attrs: *attrs}
	if m.cfg.EnableIPv4 {
		if !v4.IsValid() {
			return nil, fmt.Errorf("node %q pod cidr not assigned", m.o.NodeName)
		}
		if !m.cfg.Network.Contains(v4.Addr()) || v4.Bits() < m.cfg.Network.Bits() {
			return nil, fmt.Errorf("node %q: pod CIDR %s is not inside Network %s", m.o.NodeName, v4, m.cfg.Network)
		}
		l.EnableIPv4, l.Subnet = true, v4
	}
	if m.cfg.EnableIPv6 {
		if !v6.IsValid() {
			return nil, fmt.Errorf("node %q: no IPv6 pod CIDR assigned (spec.podCIDRs) although EnableIPv6 is true", m.o.NodeName)
		}
		if !m.cfg.IPv6Network.Contains(v6.Addr()) || v6.Bits() < m.cfg.IPv6Network.Bits() {
			return nil, fmt.Errorf("node %q: IPv6 pod CIDR %s is not inside IPv6Network %s", m.o.NodeName, v6, m.cfg.IPv6Network)
		}
		l.EnableIPv6, l.IPv6Subnet = true, v6
	}
	want := map[string]string{m.ann.KubeManaged: "true", m.ann.BackendType: attrs.BackendType}
	if l.EnableIPv4 {
		want[m.ann.BackendData] = dataString(attrs.BackendData)
		want[m.ann.PublicIP] = attrs.PublicIP.String()
		if o := n.Annotations[m.ann.PublicIPOverwrite]; o != "" {
			ip, err := netip.ParseAddr(o)
			if err != nil || !ip.Is4() {
				return nil, fmt.Errorf("node %q: annotation %s=%q is not an IPv4 address", m.o.NodeName, m.ann.PublicIPOverwrite, o)
			}
			klog.Infof("public IP %s from annotation %s", ip, m.ann.PublicIPOverwrite)
			want[m.ann.PublicIP], l.Attrs.PublicIP = o, ip
		}
		if !l.Attrs.PublicIP.IsValid() {
			return nil, fmt.Errorf("node %q: no public IPv4 address to publish (--public-ip, the interface's address or annotation %s)",
				m.o.NodeName, m.ann.PublicIPOverwrite)
		}
	}
	if l.EnableIPv6 {
		want[m.ann.BackendV6Data] = dataString(attrs.BackendV6Data)
		want[m.ann.PublicIPv6] = attrs.PublicIPv6.String()
		if o := n.Annotations[m.ann.PublicIPv6Overwrite]; o != "" {
			ip, err := netip.ParseAddr(o)
			if err != nil || !ip.Is6() {
				return nil, fmt.Errorf("node %q: annotation %s=%q is not an IPv6 address", m.o.NodeName, m.ann.PublicIPv6Overwrite, o)
			}
			klog.Infof("public IPv6 %s from annotation %s", ip, m.ann.PublicIPv6Overwrite)
			want[m.ann.PublicIPv6], l.Attrs.PublicIPv6 = o, ip
		}
		if !l.Attrs.PublicIPv6.IsValid() {
			return nil, fmt.Errorf("node %q: no public IPv6 address to publish (--public-ipv6, the interface's address or annotation %s)",
				m.o.NodeName, m.ann.PublicIPv6Overwrite)
		}
	}
	changed := false
	for k, v := range want {
		if n.Annotations[k] != v {
			changed = true
		}
	}
	if changed {
		// Through the status subresource, as upstream: its ClusterRole (kube-flannel.yml) grants nodes/status
		// patch but not nodes patch, and the node status strategy keeps metadata changes.
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": want}})
		if _, err := m.o.Client.CoreV1().Nodes().Patch(ctx, m.o.NodeName, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
			return nil, fmt.Errorf("annotate node %q: %w", m.o.NodeName, err)
		}
		klog.Infof("published lease %s on node %s", l.Key(), m.o.NodeName)
	}
	return l, nil
}

func dataString(b json.RawMessage) string {
	if len(b) == 0 {
		return "null"
	}
	return string(b)
}

// RenewLease has nothing to do: node annotations do not expire.
func (m *Manager) RenewLease(context.Context, *subnet.Lease) error { return nil }

// CompleteLease sets NetworkUnavailable=False (reason FlannelIsUp) when --set-node-network-unavailable.
func (m *Manager) CompleteLease(ctx context.Context, l *subnet.Lease) error {
	if !m.o.SetNodeNetworkUnavailable {
		return nil
	}
	now := metav1.Now()
	return m.patchCondition(ctx, m.o.NodeName, corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse,
		Reason: "FlannelIsUp", Message: "Flannel is running on this node", LastTransitionTime: now, LastHeartbeatTime: now})
}

func (m *Manager) patchCondition(ctx context.Context, node string, cond corev1.NodeCondition) error {
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{cond}}})
	if _, err := m.o.Client.CoreV1().Nodes().PatchStatus(ctx, node, patch); err != nil {
		return fmt.Errorf("set NetworkUnavailable=%s on node %q: %w", cond.Status, node, err)
	}
	return nil
}

// Node returns a Node from the manager's informer cache (no API call), for the coordination package's route
// status; ok is false when the cache holds no such node.
func (m *Manager) Node(ctx context.Context, name string) (*corev1.Node, bool, error) {
	if err := m.startInformer(ctx); err != nil {
		return nil, false, err
	}
	obj, ok, err := m.informer.GetStore().GetByKey(name)
	if err != nil || !ok {
		return nil, false, err
	}
	return obj.(*corev1.Node), true, nil
}

// startInformer starts the shared node informer once; every caller then waits (bounded by its ctx and
// CacheSyncTimeout, unless ContinueWhenCacheNotReady) for its cache.
func (m *Manager) startInformer(ctx context.Context) error {
	m.once.Do(func() {
		f := informers.NewSharedInformerFactory(m.o.Client, 0)
		m.informer = f.Core().V1().Nodes().Informer()
		go m.informer.Run(m.stop)
	})
	timeout := m.o.CacheSyncTimeout
	if timeout <= 0 {
		timeout = defaultCacheSyncTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if cache.WaitForCacheSync(wctx.Done(), m.informer.HasSynced) {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	err := fmt.Errorf("node informer did not sync within %v (is the API server reachable, may this node list and watch nodes?)", timeout)
	if !m.o.ContinueWhenCacheNotReady {
		return err
	}
	klog.Errorf("%v; waiting on, as CONT_WHEN_CACHE_NOT_READY=true", err)
	if m.syncTimedOut != nil {
		m.syncTimedOut()
	}
	if !cache.WaitForCacheSync(ctx.Done(), m.informer.HasSynced) {
		return ctx.Err()
	}
	klog.Infof("node informer synced")
	return nil
}

// WatchLeases sends the peer leases as one batch, then every change, until ctx ends.
func (m *Manager) WatchLeases(ctx context.Context, out chan<- []subnet.Event) error {
	return m.watch(ctx, out, "", nil)
}

// WatchLease reports changes to this node's own lease relative to l: deleting the node or its
// kube-subnet-manager annotation reports EventRemoved, also when that happened before the call.
func (m *Manager) WatchLease(ctx context.Context, l *subnet.Lease, out chan<- []subnet.Event) error {
	return m.watch(ctx, out, m.o.NodeName, l)
}

// watch diffs the nodes' leases against what it has reported so far: all peers (only == "", starting with a
// snapshot batch) or the node called only (starting from its lease l).
func (m *Manager) watch(ctx context.Context, out chan<- []subnet.Event, only string, own *subnet.Lease) error {
	if err := m.startInformer(ctx); err != nil {
		return err
	}
	sent := map[string]subnet.Lease{} // by node name; touched only by this goroutine
	var mu sync.Mutex
	pending := map[string]*corev1.Node{} // latest object per node, nil = deleted
	kick := make(chan struct{}, 1)
	note := func(name string, n *corev1.Node) {
		if only != "" && name != only {
			return
		}
		mu.Lock()
		pending[name] = n
		mu.Unlock()
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	// Register the handler before reading the snapshot: a change that lands in between is then queued, not lost.
	reg, err := m.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { n := obj.(*corev1.Node); note(n.Name, n) },
		UpdateFunc: func(_, obj any) { n := obj.(*corev1.Node); note(n.Name, n) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				note(n.Name, nil)
			}
		},
	})
	if err != nil {
		return err
	}
	defer func() { _ = m.informer.RemoveEventHandler(reg) }()
	if only != "" {
		// Our node's current state goes through the diff below against the lease the caller holds, so a change
		// made before this call is reported too.
		if own != nil {
			sent[only] = *own
		}
		if obj, ok, _ := m.informer.GetStore().GetByKey(only); ok {
			note(only, obj.(*corev1.Node))
		} else {
			note(only, nil)
		}
	} else {
		// Snapshot first, as one batch.
		snap := []subnet.Event{}
		for _, obj := range m.informer.GetStore().List() {
			n := obj.(*corev1.Node)
			if l, ok := m.leaseFromNode(n); ok {
				sent[n.Name] = l
				snap = append(snap, subnet.Event{Type: subnet.EventAdded, Lease: l})
			}
		}
		select {
		case out <- snap:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-kick:
		}
		mu.Lock()
		changes := pending
		pending = map[string]*corev1.Node{}
		mu.Unlock()
		var batch []subnet.Event
		for name, n := range changes {
			old, had := sent[name]
			var l subnet.Lease
			ok := false
			if n != nil {
				l, ok = m.leaseFromNode(n)
			}
			switch {
			case ok && had && old.Key() != l.Key():
				// Another subnet under the same node name (a node re-created while the watch was down).
				sent[name] = l
				batch = append(batch, subnet.Event{Type: subnet.EventRemoved, Lease: old}, subnet.Event{Type: subnet.EventAdded, Lease: l})
			case ok && (!had || !reflect.DeepEqual(old, l)):
				sent[name] = l
				batch = append(batch, subnet.Event{Type: subnet.EventAdded, Lease: l})
			case !ok && had:
				delete(sent, name)
				batch = append(batch, subnet.Event{Type: subnet.EventRemoved, Lease: old})
			}
		}
		if len(batch) == 0 {
			continue
		}
		select {
		case out <- batch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// IsNotFound tells whether err means the node does not exist.
func IsNotFound(err error) bool { return apierrors.IsNotFound(err) }
