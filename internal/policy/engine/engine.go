// Package engine keeps a node's NetworkPolicy table in the kernel equal to what the cluster's policies, pods and
// namespaces ask for. Changes (from informers, or a CNI ADD announcing a new pod's addresses) mark the state
// dirty; after a short window that gathers a burst of them, one render (internal/policy/ruleset) and one
// knftables transaction holding only the difference from what was last applied bring the kernel up to date. A
// periodic check compares the kernel's table with what was applied and rewrites it whole when they differ (a
// flushed or deleted table is restored). A CNI ADD waits, through Ensure, until a sync that includes its pod has
// reached the kernel, so a pod never runs a moment unprotected.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/knftables"

	"github.com/weftnet/weft/internal/policy"
	"github.com/weftnet/weft/internal/policy/ruleset"
)

// Kernel is what the engine needs of nftables (knftables.Interface has it; knftables.NewFake for unit tests).
type Kernel interface {
	NewTransaction() *knftables.Transaction
	Run(ctx context.Context, tx *knftables.Transaction) error
	List(ctx context.Context, objectType string) ([]string, error)
	ListRules(ctx context.Context, chain string) ([]*knftables.Rule, error)
	ListElements(ctx context.Context, objectType, name string) ([]*knftables.Element, error)
}

// Config is the engine's settings.
type Config struct {
	Node   string        // this node's name: its pods are the subjects
	IPv6   bool          // render the IPv6 half
	Window time.Duration // how long a burst of changes is gathered before a sync (default 20 ms)
	Check  time.Duration // how often the kernel's table is compared with the applied one (default 30 s)
	Log    *slog.Logger
	// Get reads a pod from the API (ErrNoSuchPod when there is none); nil: Ensure fails for an unknown pod.
	Get func(ctx context.Context, namespace, name string) (*policy.Pod, string, error)
}

// Engine is the node's policy state and its sync loop.
type Engine struct {
	cfg    Config
	kernel Kernel

	mu         sync.Mutex
	pods       map[string]*entry // namespace/name
	namespaces map[string]labels.Set
	policies   map[string]*policy.Policy // namespace/name
	bad        map[string]error          // policies that did not compile, by namespace/name
	gen        uint64                    // bumped by every change
	synced     uint64                    // the last generation in the kernel
	syncErr    error                     // the last sync's failure, nil after a success
	unenforced []string
	waiters    []waiter
	dirty      chan struct{}
	informed   chan struct{} // closed once the informers have synced (Informed): before, nothing is known
	informOnce sync.Once

	applied *ruleset.Ruleset // what the kernel holds (nil: unknown, write it whole)
}

type entry struct {
	pod  *policy.Pod
	node string
}

type waiter struct {
	gen  uint64
	done chan error
}

// New makes an engine; Run starts it.
func New(cfg Config, k Kernel) *Engine {
	if cfg.Window <= 0 {
		cfg.Window = 20 * time.Millisecond
	}
	if cfg.Check <= 0 {
		cfg.Check = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Engine{cfg: cfg, kernel: k, pods: map[string]*entry{}, namespaces: map[string]labels.Set{},
		policies: map[string]*policy.Policy{}, bad: map[string]error{}, dirty: make(chan struct{}, 1), informed: make(chan struct{})}
}

// Informed says the informers have delivered the cluster's pods, namespaces and policies once: Ensure waits for
// it, since a pod checked against a partial view could be let out unprotected.
func (e *Engine) Informed() { e.informOnce.Do(func() { close(e.informed) }) }

// SetGetter sets Config.Get (the API client is known after the engine is made).
func (e *Engine) SetGetter(get func(ctx context.Context, namespace, name string) (*policy.Pod, string, error)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg.Get = get
}

// changed bumps the generation and wakes the loop; e.mu is held.
func (e *Engine) changed() uint64 {
	e.gen++
	select {
	case e.dirty <- struct{}{}:
	default:
	}
	return e.gen
}

// SetPod records a pod (added or updated) running on node.
func (e *Engine) SetPod(p *policy.Pod, node string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := p.Ref()
	if old, ok := e.pods[key]; ok && old.node == node && podEqual(old.pod, p) {
		return
	}
	// Addresses announced by a CNI ADD stay until the API reports the pod's own.
	if old, ok := e.pods[key]; ok && len(p.IPs) == 0 && len(old.pod.IPs) > 0 && p.Subject() {
		q := *p
		q.IPs = old.pod.IPs
		p = &q
	}
	e.pods[key] = &entry{pod: p, node: node}
	e.changed()
}

// DeletePod forgets a pod: its chains and set memberships go with the next sync.
func (e *Engine) DeletePod(namespace, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.pods[namespace+"/"+name]; ok {
		delete(e.pods, namespace+"/"+name)
		e.changed()
	}
}

// SetNamespace records a namespace's labels.
func (e *Engine) SetNamespace(name string, l labels.Set) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if old, ok := e.namespaces[name]; ok && labels.Equals(old, l) {
		return
	}
	e.namespaces[name] = l
	e.changed()
}

// DeleteNamespace forgets a namespace.
func (e *Engine) DeleteNamespace(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.namespaces[name]; ok {
		delete(e.namespaces, name)
		e.changed()
	}
}

// SetPolicy records a compiled policy, or the error that kept one from compiling (the policy is then left out,
// and Problems reports it).
func (e *Engine) SetPolicy(namespace, name string, p *policy.Policy, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := namespace + "/" + name
	if err != nil {
		e.bad[key] = err
		if _, ok := e.policies[key]; !ok {
			return
		}
		delete(e.policies, key)
	} else {
		delete(e.bad, key)
		e.policies[key] = p
	}
	e.changed()
}

// DeletePolicy forgets a policy.
func (e *Engine) DeletePolicy(namespace, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := namespace + "/" + name
	delete(e.bad, key)
	if _, ok := e.policies[key]; ok {
		delete(e.policies, key)
		e.changed()
	}
}

// ErrNoSuchPod is Ensure's answer for a pod the API server does not know (a CNI ADD from outside Kubernetes):
// no policy can select it.
var ErrNoSuchPod = errors.New("no such pod in the API")

// Ensure records a local pod's addresses (a CNI ADD knows them before the API does) and returns once a sync that
// includes them is in the kernel, or with the sync's error, or ctx's. A pod the informer has not delivered yet is
// read with Config.Get.
func (e *Engine) Ensure(ctx context.Context, namespace, name string, ips []netip.Addr) error {
	key := namespace + "/" + name
	select {
	case <-e.informed:
	case <-ctx.Done():
		return fmt.Errorf("network policy: pod %s/%s: the pod, namespace and policy informers have not synced yet: %w", namespace, name, ctx.Err())
	}
	if err := e.await(ctx, namespace, name); err != nil {
		return err
	}
	e.mu.Lock()
	en := e.pods[key]
	if !slices.Equal(en.pod.IPs, ips) {
		q := *en.pod
		q.IPs = slices.Clone(ips)
		e.pods[key] = &entry{pod: &q, node: e.cfg.Node}
		e.changed()
	}
	w := waiter{gen: e.gen, done: make(chan error, 1)}
	if e.synced >= w.gen && e.syncErr == nil {
		e.mu.Unlock()
		return nil
	}
	e.waiters = append(e.waiters, w)
	e.mu.Unlock()
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		e.mu.Lock()
		last := e.syncErr
		e.mu.Unlock()
		if last != nil {
			return fmt.Errorf("network policy: pod %s/%s's rules are not in the kernel (%w): the last sync failed: %v", namespace, name, ctx.Err(), last)
		}
		return fmt.Errorf("network policy: pod %s/%s's rules are not in the kernel yet: %w", namespace, name, ctx.Err())
	}
}

// await makes sure the pod is known: from the informer, else read with Config.Get (the informer may lag the
// pod's creation by a moment; the API is the truth).
func (e *Engine) await(ctx context.Context, namespace, name string) error {
	e.mu.Lock()
	_, ok := e.pods[namespace+"/"+name]
	e.mu.Unlock()
	if ok {
		return nil
	}
	e.mu.Lock()
	get := e.cfg.Get
	e.mu.Unlock()
	if get == nil {
		return fmt.Errorf("network policy: pod %s/%s is not known yet", namespace, name)
	}
	p, node, err := get(ctx, namespace, name)
	if err != nil {
		return err // ErrNoSuchPod among others
	}
	e.mu.Lock()
	if _, ok := e.pods[namespace+"/"+name]; !ok { // the informer's copy, if it came meanwhile, is as new
		e.pods[namespace+"/"+name] = &entry{pod: p, node: node}
		e.changed()
	}
	e.mu.Unlock()
	return nil
}

// Problems lists what the engine cannot enforce: policies that did not compile, SCTP ports, the last sync's
// failure.
func (e *Engine) Problems() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, k := range sortedKeys(e.bad) {
		out = append(out, e.bad[k].Error())
	}
	out = append(out, e.unenforced...)
	if e.syncErr != nil {
		out = append(out, "the last sync failed: "+e.syncErr.Error())
	}
	return out
}

// Run syncs until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	check := time.NewTicker(e.cfg.Check)
	defer check.Stop()
	retry := time.Duration(0)
	var retryC <-chan time.Time
	e.sync(ctx) // the first sync writes the table whole
	for {
		select {
		case <-ctx.Done():
			e.release(ctx.Err())
			return nil
		case <-e.dirty:
			timer := time.NewTimer(e.cfg.Window)
			select {
			case <-ctx.Done():
				timer.Stop()
				continue
			case <-timer.C:
			}
		case <-check.C:
			if e.drifted(ctx) {
				e.mu.Lock()
				e.applied = nil
				e.mu.Unlock()
			}
		case <-retryC:
		}
		if err := e.sync(ctx); err != nil {
			retry = min(max(2*retry, 100*time.Millisecond), 10*time.Second)
			retryC = time.After(retry)
		} else {
			retry, retryC = 0, nil
		}
	}
}

// sync renders the current state and writes the difference from what was applied (everything when that is
// unknown), then answers the waiters it covers.
func (e *Engine) sync(ctx context.Context) error {
	e.mu.Lock()
	gen, in := e.gen, e.input()
	old := e.applied
	e.mu.Unlock()
	rs := ruleset.Render(in)
	tx := e.kernel.NewTransaction()
	if old == nil {
		ruleset.Full(tx, rs)
	} else {
		ruleset.Diff(tx, old, rs)
	}
	err := e.kernel.Run(ctx, tx)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		if e.syncErr == nil || e.syncErr.Error() != err.Error() {
			e.cfg.Log.Warn("network policy: sync failed; retrying", "err", err)
		}
		e.applied, e.syncErr = nil, err // the table is not known now: the retry writes it whole
		return err
	}
	if !slices.Equal(e.unenforced, rs.Unenforced) {
		for _, u := range rs.Unenforced {
			e.cfg.Log.Warn("network policy: not enforced", "what", u)
		}
	}
	if e.syncErr != nil {
		e.cfg.Log.Info("network policy: sync works again")
	}
	e.applied, e.synced, e.syncErr, e.unenforced = rs, gen, nil, rs.Unenforced
	keep := e.waiters[:0]
	for _, w := range e.waiters {
		if w.gen <= gen {
			w.done <- nil
		} else {
			keep = append(keep, w)
		}
	}
	e.waiters = keep
	return nil
}

// release answers every waiter with err (the engine is stopping).
func (e *Engine) release(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, w := range e.waiters {
		w.done <- fmt.Errorf("network policy: the engine stopped: %w", err)
	}
	e.waiters = nil
}

// input is the render's input from the current state; e.mu is held. The pods are copied out (entries are
// replaced, never changed), so the render runs without the lock.
func (e *Engine) input() ruleset.Input {
	in := ruleset.Input{IPv6: e.cfg.IPv6}
	local := map[*policy.Pod]bool{}
	for _, k := range sortedKeys(e.pods) {
		en := e.pods[k]
		in.Pods = append(in.Pods, en.pod)
		if en.node == e.cfg.Node {
			local[en.pod] = true
		}
	}
	for _, k := range sortedKeys(e.policies) {
		in.Policies = append(in.Policies, e.policies[k])
	}
	ns := make(map[string]labels.Set, len(e.namespaces))
	for k, v := range e.namespaces {
		ns[k] = v
	}
	in.Namespaces = func(n string) (labels.Set, bool) { l, ok := ns[n]; return l, ok }
	in.Local = func(p *policy.Pod) bool { return local[p] }
	return in
}

// drifted says whether the kernel's table differs from what was applied: its chains, its sets, the forward
// chain's rule count, the dispatch maps' sizes.
func (e *Engine) drifted(ctx context.Context) bool {
	e.mu.Lock()
	rs := e.applied
	e.mu.Unlock()
	if rs == nil {
		return true
	}
	why := func(s string, args ...any) bool {
		e.cfg.Log.Warn("network policy: the kernel's table drifted; rewriting it", "why", fmt.Sprintf(s, args...))
		return true
	}
	chains, err := e.kernel.List(ctx, "chains")
	if err != nil {
		return why("list chains: %v", err)
	}
	if want := len(rs.Chains) + 1; len(chains) != want {
		return why("%d chains, want %d", len(chains), want)
	}
	sets, err := e.kernel.List(ctx, "sets")
	if err != nil {
		return why("list sets: %v", err)
	}
	if len(sets) != len(rs.Sets) {
		return why("%d sets, want %d", len(sets), len(rs.Sets))
	}
	rules, err := e.kernel.ListRules(ctx, "forward")
	if err != nil || len(rules) != len(ruleset.BaseRules) {
		return why("forward chain: %d rules (%v), want %d", len(rules), err, len(ruleset.BaseRules))
	}
	for m, want := range rs.Maps {
		els, err := e.kernel.ListElements(ctx, "map", m)
		if err != nil && !knftables.IsNotFound(err) || len(els) != len(want) {
			return why("map %s: %d elements (%v), want %d", m, len(els), err, len(want))
		}
	}
	return false
}

func podEqual(a, b *policy.Pod) bool {
	return a.Namespace == b.Namespace && a.Name == b.Name && labels.Equals(a.Labels, b.Labels) && slices.Equal(a.IPs, b.IPs) &&
		a.HostNetwork == b.HostNetwork && a.Terminated == b.Terminated && slices.Equal(a.Ports, b.Ports)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
