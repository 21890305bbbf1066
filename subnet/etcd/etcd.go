// Package etcd is weft's etcd (v3 API) subnet manager, storing leases exactly where and how upstream flanneld
// does, so both daemons can share one store:
//
//	<prefix>/config                     net-conf.json
//	<prefix>/subnets/10.244.3.0-24      {"PublicIP":"...","PublicIPv6":null,"BackendType":"vxlan","BackendData":{...}}
//
// A lease key is bound to an etcd lease with a 24 h TTL, created with a transaction that succeeds only when the
// key does not exist yet, and renewed renew-margin before it expires; a key without a TTL is a reservation that
// only the node with the matching PublicIP may use. Allocation prefers, in order: the lease whose PublicIP is this
// node's, the subnet named by the previous subnet.env, and a random free subnet.
//
// Nothing is kept only in memory: every decision re-reads the store, so restarts and concurrent daemons
// (weftd or flanneld) converge.
package etcd

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/subnet"
)

// LeaseTTL is upstream's lease lifetime.
const LeaseTTL = 24 * time.Hour

// ErrConfigNotFound is upstream's text for a missing <prefix>/config.
var ErrConfigNotFound = errors.New("flannel config not found in etcd store. Did you create your config using etcdv3 API?")

// Options configure the manager; they map one to one onto weftd's --etcd-* flags.
type Options struct {
	Endpoints  []string
	Prefix     string // default /coreos.com/network
	KeyFile    string
	CertFile   string
	CAFile     string
	Username   string
	Password   string
	SubnetFile string // the previous subnet.env, whose subnet is preferred on a fresh allocation
	// RenewMargin is how long before expiry RenewLease is due; informational here (the daemon schedules).
	RenewMargin time.Duration
	// TTL overrides LeaseTTL (tests).
	TTL time.Duration
}

// Manager implements subnet.Manager on etcd.
type Manager struct {
	cli    *clientv3.Client
	prefix string
	opts   Options

	mu  sync.Mutex
	cfg *subnet.Config

	// startRev, when set, chooses the revision a watch starts at after a listing (tests force a compacted one).
	startRev func(listRev int64) int64
}

var _ subnet.Manager = (*Manager)(nil)

// New connects to etcd (lazily: an unreachable etcd shows up as errors from the first calls, which the daemon
// retries).
func New(ctx context.Context, o Options) (*Manager, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("--etcd-endpoints: at least one endpoint is required")
	}
	if o.Prefix == "" {
		o.Prefix = "/coreos.com/network"
	}
	if o.TTL == 0 {
		o.TTL = LeaseTTL
	}
	cc := clientv3.Config{
		Endpoints:   o.Endpoints,
		DialTimeout: 5 * time.Second,
		Username:    o.Username,
		Password:    o.Password,
		Context:     ctx,
		Logger:      nil,
	}
	if o.KeyFile != "" || o.CertFile != "" || o.CAFile != "" {
		ti := transport.TLSInfo{KeyFile: o.KeyFile, CertFile: o.CertFile, TrustedCAFile: o.CAFile}
		tc, err := ti.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("--etcd-keyfile/--etcd-certfile/--etcd-cafile: %w", err)
		}
		tc.MinVersion = tls.VersionTLS12
		cc.TLS = tc
	} else if strings.HasPrefix(o.Endpoints[0], "https://") {
		cc.TLS = &tls.Config{MinVersion: tls.VersionTLS12} // the system's CAs
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("etcd client for %v: %w", o.Endpoints, err)
	}
	go func() { <-ctx.Done(); cli.Close() }()
	return &Manager{cli: cli, prefix: strings.TrimSuffix(o.Prefix, "/"), opts: o}, nil
}

// Close disconnects from etcd (cancelling New's context does too).
func (m *Manager) Close() error { return m.cli.Close() }

// Name implements subnet.Manager.
func (m *Manager) Name() string { return "etcd" }

func (m *Manager) configKey() string  { return m.prefix + "/config" }
func (m *Manager) subnetsDir() string { return m.prefix + "/subnets/" }

// GetNetworkConfig reads and validates <prefix>/config.
func (m *Manager) GetNetworkConfig(ctx context.Context) (*subnet.Config, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := m.cli.Get(cctx, m.configKey())
	if err != nil {
		return nil, fmt.Errorf("read %s from etcd %v: %w", m.configKey(), m.opts.Endpoints, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, ErrConfigNotFound
	}
	cfg, err := subnet.ParseConfig(resp.Kvs[0].Value)
	if err == nil {
		err = cfg.ValidateEtcd()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.configKey(), err)
	}
	m.mu.Lock()
	m.cfg = cfg
	m.mu.Unlock()
	return cfg, nil
}

func (m *Manager) config(ctx context.Context) (*subnet.Config, error) {
	m.mu.Lock()
	c := m.cfg
	m.mu.Unlock()
	if c != nil {
		return c, nil
	}
	return m.GetNetworkConfig(ctx)
}

// entry is one stored lease.
type entry struct {
	key       string
	lease     subnet.Lease
	etcdID    clientv3.LeaseID // 0: a reservation
	modRev    int64
	createRev int64
	invalid   bool // unparsable value: its subnet counts as taken, but it is never reported or reused
}

func (m *Manager) parseKV(kv *mvccpb.KeyValue) (entry, bool) {
	key := string(kv.Key)
	name := strings.TrimPrefix(key, m.subnetsDir())
	v4, v6, err := subnet.ParseLeaseKey(name)
	if err != nil {
		klog.V(2).Infof("ignoring %s: %v", key, err)
		return entry{}, false
	}
	e := entry{key: key, etcdID: clientv3.LeaseID(kv.Lease), modRev: kv.ModRevision, createRev: kv.CreateRevision}
	e.lease = subnet.Lease{Subnet: v4, IPv6Subnet: v6, EnableIPv4: v4.IsValid(), EnableIPv6: v6.IsValid(), Asof: kv.ModRevision}
	if kv.Value == nil {
		return e, true // a deletion event carries no value
	}
	if err := json.Unmarshal(kv.Value, &e.lease.Attrs); err != nil {
		klog.V(2).Infof("ignoring lease %s with an unreadable value: %v", key, err)
		e.invalid = true
	}
	return e, true
}

func (m *Manager) list(ctx context.Context) ([]entry, int64, error) {
	resp, err := m.cli.Get(ctx, m.subnetsDir(), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("list leases under %s: %w", m.subnetsDir(), err)
	}
	var out []entry
	for _, kv := range resp.Kvs {
		if e, ok := m.parseKV(kv); ok {
			out = append(out, e)
		}
	}
	return out, resp.Header.Revision, nil
}

// samePublicIP tells whether a stored lease belongs to the node publishing attrs: the IPv4 public address
// decides as upstream; an IPv6-only node is matched by its IPv6 public address.
func samePublicIP(stored, attrs *subnet.LeaseAttrs) bool {
	if attrs.PublicIP.IsValid() {
		return stored.PublicIP == attrs.PublicIP
	}
	return attrs.PublicIPv6.IsValid() && stored.PublicIPv6 == attrs.PublicIPv6
}

// compatible is upstream's test of a stored or remembered lease against the current configuration: each
// enabled family's subnet has SubnetLen and lies between SubnetMin and SubnetMax; a disabled family has none.
func compatible(cfg *subnet.Config, v4, v6 netip.Prefix) bool {
	if cfg.EnableIPv4 != v4.IsValid() || cfg.EnableIPv6 != v6.IsValid() {
		return false
	}
	return (!cfg.EnableIPv4 || cfg.V4Range().Contains(v4)) && (!cfg.EnableIPv6 || cfg.V6Range().Contains(v6))
}

// PreviousLease returns the stored lease whose PublicIP is this node's.
func (m *Manager) PreviousLease(ctx context.Context, attrs *subnet.LeaseAttrs) (*subnet.Lease, error) {
	entries, _, err := m.list(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !e.invalid && samePublicIP(&e.lease.Attrs, attrs) {
			l := e.lease
			return &l, nil
		}
	}
	return nil, nil
}

// AcquireLease implements subnet.Manager. It retries (as upstream, ten times) when another node changed the
// store between reading and writing.
func (m *Manager) AcquireLease(ctx context.Context, attrs *subnet.LeaseAttrs) (*subnet.Lease, error) {
	cfg, err := m.config(ctx)
	if err != nil {
		return nil, err
	}
	for try := 0; try < 10; try++ {
		l, err := m.tryAcquire(ctx, cfg, attrs)
		if !errors.Is(err, errRace) {
			return l, err
		}
		klog.V(2).Infof("acquire lease: %v; retrying", err)
	}
	return nil, fmt.Errorf("acquire lease: the store kept changing concurrently (10 attempts): %w", errRace)
}

var errRace = errors.New("lease changed concurrently")

func (m *Manager) grant(ctx context.Context) (clientv3.LeaseID, error) {
	g, err := m.cli.Grant(ctx, int64(m.opts.TTL/time.Second))
	if err != nil {
		return 0, fmt.Errorf("grant an etcd lease of %v: %w", m.opts.TTL, err)
	}
	return g.ID, nil
}

func (m *Manager) revoke(ctx context.Context, id clientv3.LeaseID) {
	if id == 0 {
		return
	}
	if _, err := m.cli.Revoke(context.WithoutCancel(ctx), id); err != nil {
		klog.V(2).Infof("revoke etcd lease %x: %v (it expires on its own)", id, err)
	}
}

func (m *Manager) tryAcquire(ctx context.Context, cfg *subnet.Config, attrs *subnet.LeaseAttrs) (*subnet.Lease, error) {
	entries, _, err := m.list(ctx)
	if err != nil {
		return nil, err
	}
	value, err := json.Marshal(attrs)
	if err != nil {
		return nil, err
	}
	taken4, taken6 := subnet.NewTaken(cfg.SubnetLen), subnet.NewTaken(cfg.IPv6SubnetLen)
	for _, e := range entries {
		if e.invalid || !samePublicIP(&e.lease.Attrs, attrs) {
			taken4.Add(e.lease.Subnet)
			taken6.Add(e.lease.IPv6Subnet)
			continue
		}
		// 1. Our own lease (or reservation), matched by PublicIP.
		if compatible(cfg, e.lease.Subnet, e.lease.IPv6Subnet) {
			return m.reuse(ctx, e, attrs, value)
		}
		// Left from another configuration: delete it, as upstream does, and allocate afresh.
		klog.Infof("lease %s of this node does not fit the configuration (%s); deleting it", e.key, describeRanges(cfg))
		tr, err := m.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(e.key), "=", e.modRev)).
			Then(clientv3.OpDelete(e.key)).Commit()
		if err != nil {
			return nil, fmt.Errorf("delete incompatible lease %s: %w", e.key, err)
		}
		if !tr.Succeeded {
			return nil, errRace
		}
	}

	// 2. The subnet(s) of the previous subnet.env, when they fit and are free.
	var want4, want6 netip.Prefix
	how := "subnet from " + m.opts.SubnetFile
	if m.opts.SubnetFile != "" {
		env, err := subnet.ReadEnvFile(m.opts.SubnetFile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			klog.Warningf("ignoring the previous subnet file: %v", err)
		default:
			if p := env.Subnet.Masked(); cfg.EnableIPv4 && cfg.V4Range().Contains(p) && !taken4.Has(p) {
				want4 = p
			}
			if p := env.IPv6Subnet.Masked(); cfg.EnableIPv6 && cfg.V6Range().Contains(p) && !taken6.Has(p) {
				want6 = p
			}
			if env.Subnet.IsValid() && cfg.EnableIPv4 && !want4.IsValid() || env.IPv6Subnet.IsValid() && cfg.EnableIPv6 && !want6.IsValid() {
				klog.Infof("the previous subnets in %s (%v %v) are taken or outside %s; allocating anew",
					m.opts.SubnetFile, env.Subnet, env.IPv6Subnet, describeRanges(cfg))
			}
		}
	}
	// 3. Random free subnets for whatever is still missing.
	if cfg.EnableIPv4 && !want4.IsValid() {
		if want4, err = cfg.V4Range().PickFree(taken4); err != nil {
			return nil, fmt.Errorf("allocate an IPv4 /%d between SubnetMin %s and SubnetMax %s of %s: %w",
				cfg.SubnetLen, cfg.SubnetMin, cfg.SubnetMax, cfg.Network, err)
		}
		how = "new subnet"
	}
	if cfg.EnableIPv6 && !want6.IsValid() {
		if want6, err = cfg.V6Range().PickFree(taken6); err != nil {
			return nil, fmt.Errorf("allocate an IPv6 /%d between IPv6SubnetMin %s and IPv6SubnetMax %s of %s: %w",
				cfg.IPv6SubnetLen, cfg.IPv6SubnetMin, cfg.IPv6SubnetMax, cfg.IPv6Network, err)
		}
		how = "new subnet"
	}
	return m.create(ctx, want4, want6, attrs, value, how)
}

// reuse rewrites this node's stored lease with the current attributes: a reservation stays without TTL, a
// lease moves to a fresh etcd lease of the full TTL.
func (m *Manager) reuse(ctx context.Context, e entry, attrs *subnet.LeaseAttrs, value []byte) (*subnet.Lease, error) {
	put := clientv3.OpPut(e.key, string(value))
	var id clientv3.LeaseID
	if e.etcdID != 0 {
		var err error
		if id, err = m.grant(ctx); err != nil {
			return nil, err
		}
		put = clientv3.OpPut(e.key, string(value), clientv3.WithLease(id))
	}
	tr, err := m.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(e.key), "=", e.modRev)).Then(put).Commit()
	if err != nil || !tr.Succeeded {
		m.revoke(ctx, id)
		if err == nil {
			return nil, errRace
		}
		return nil, fmt.Errorf("update lease %s: %w", e.key, err)
	}
	m.revoke(ctx, e.etcdID) // holds nothing any more
	how := "existing lease"
	if id == 0 {
		how = "reservation"
	}
	return m.leaseFor(e.lease.Subnet, e.lease.IPv6Subnet, attrs, id, tr.Header.Revision, how), nil
}

// create writes a new lease key, only if it does not exist yet (upstream's Version(key) == 0 transaction). Keys
// of different subnets can still overlap (two nodes racing in dual stack can pick the same IPv4 subnet with
// different IPv6 ones), so the store is read again afterwards and the younger of two overlapping keys yields.
func (m *Manager) create(ctx context.Context, v4, v6 netip.Prefix, attrs *subnet.LeaseAttrs, value []byte, how string) (*subnet.Lease, error) {
	key := m.subnetsDir() + subnet.LeaseKey(v4, v6)
	id, err := m.grant(ctx)
	if err != nil {
		return nil, err
	}
	tr, err := m.cli.Txn(ctx).If(clientv3.Compare(clientv3.Version(key), "=", 0)).
		Then(clientv3.OpPut(key, string(value), clientv3.WithLease(id))).Commit()
	if err != nil || !tr.Succeeded {
		m.revoke(ctx, id)
		if err == nil {
			return nil, errRace
		}
		return nil, fmt.Errorf("create lease %s: %w", key, err)
	}
	created := tr.Header.Revision
	entries, _, err := m.list(ctx)
	if err != nil {
		return nil, err // the key stays; the next attempt finds it by PublicIP
	}
	for _, e := range entries {
		if e.key == key || e.createRev > created || !overlaps(e.lease, v4, v6) {
			continue
		}
		klog.V(2).Infof("lease %s overlaps the older %s; giving it up", key, e.key)
		m.revoke(ctx, id) // deletes the key
		return nil, errRace
	}
	return m.leaseFor(v4, v6, attrs, id, created, how), nil
}

func overlaps(l subnet.Lease, v4, v6 netip.Prefix) bool {
	return v4.IsValid() && l.Subnet.IsValid() && l.Subnet.Overlaps(v4) ||
		v6.IsValid() && l.IPv6Subnet.IsValid() && l.IPv6Subnet.Overlaps(v6)
}

func (m *Manager) leaseFor(v4, v6 netip.Prefix, attrs *subnet.LeaseAttrs, id clientv3.LeaseID, rev int64, how string) *subnet.Lease {
	l := &subnet.Lease{Subnet: v4, IPv6Subnet: v6, EnableIPv4: v4.IsValid(), EnableIPv6: v6.IsValid(), Attrs: *attrs, Asof: rev}
	if id != 0 {
		l.Expiration = time.Now().Add(m.opts.TTL)
	}
	klog.Infof("acquired lease %s (%s)", l.Key(), how)
	return l
}

func describeRanges(cfg *subnet.Config) string {
	var parts []string
	if cfg.EnableIPv4 {
		parts = append(parts, fmt.Sprintf("/%d from %s to %s", cfg.SubnetLen, cfg.SubnetMin, cfg.SubnetMax))
	}
	if cfg.EnableIPv6 {
		parts = append(parts, fmt.Sprintf("/%d from %s to %s", cfg.IPv6SubnetLen, cfg.IPv6SubnetMin, cfg.IPv6SubnetMax))
	}
	return strings.Join(parts, " and ")
}

// RenewLease gives the lease a fresh etcd lease of the full TTL (a reservation needs nothing). It fails with
// subnet.ErrLeaseNotFound when the key is gone or now belongs to another node.
func (m *Manager) RenewLease(ctx context.Context, l *subnet.Lease) error {
	key := m.subnetsDir() + l.Key()
	resp, err := m.cli.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", l.Key(), err)
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("renew lease %s: %w", l.Key(), subnet.ErrLeaseNotFound)
	}
	kv := resp.Kvs[0]
	var stored subnet.LeaseAttrs
	if err := json.Unmarshal(kv.Value, &stored); err != nil || !samePublicIP(&stored, &l.Attrs) {
		return fmt.Errorf("renew lease %s: it now belongs to another node (PublicIP %v): %w", l.Key(), stored.PublicIP, subnet.ErrLeaseNotFound)
	}
	if kv.Lease == 0 {
		return nil // a reservation never expires
	}
	id, err := m.grant(ctx)
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", l.Key(), err)
	}
	value, err := json.Marshal(&l.Attrs)
	if err != nil {
		return err
	}
	tr, err := m.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
		Then(clientv3.OpPut(key, string(value), clientv3.WithLease(id))).Commit()
	if err != nil || !tr.Succeeded {
		m.revoke(ctx, id)
		if err == nil {
			err = errRace
		}
		return fmt.Errorf("renew lease %s: %w", l.Key(), err)
	}
	m.revoke(ctx, clientv3.LeaseID(kv.Lease))
	l.Expiration = time.Now().Add(m.opts.TTL)
	l.Asof = tr.Header.Revision
	return nil
}

// CompleteLease has nothing to do in etcd mode.
func (m *Manager) CompleteLease(context.Context, *subnet.Lease) error { return nil }

// WatchLeases implements subnet.Manager: one snapshot batch, then changes. When the watch breaks (for example
// because its revision was compacted) it lists the leases again and reports the difference, so no change is lost.
func (m *Manager) WatchLeases(ctx context.Context, out chan<- []subnet.Event) error {
	known := map[string]subnet.Lease{}
	first := true
	b := backoff{}
	for {
		entries, rev, err := m.list(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			klog.Errorf("watch leases: %v (retrying)", err)
			if !sleep(ctx, b.next()) {
				return ctx.Err()
			}
			continue
		}
		var batch []subnet.Event
		batch, known = resync(known, entries)
		if first || len(batch) > 0 {
			if batch == nil {
				batch = []subnet.Event{}
			}
			if !send(ctx, out, batch) {
				return ctx.Err()
			}
			first = false
		}
		err = m.watchFrom(ctx, m.watchStart(rev), known, out)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		klog.Infof("lease watch ended (%v); listing the leases again", err)
		if !sleep(ctx, b.next()) {
			return ctx.Err()
		}
	}
}

// resync compares a fresh listing with what was reported so far and returns the events that bring a watcher
// up to date, and the new state.
func resync(known map[string]subnet.Lease, entries []entry) ([]subnet.Event, map[string]subnet.Lease) {
	var batch []subnet.Event
	now := map[string]subnet.Lease{}
	for _, e := range entries {
		if e.invalid {
			continue
		}
		now[e.key] = e.lease
		if old, ok := known[e.key]; !ok || old.Asof != e.lease.Asof {
			batch = append(batch, subnet.Event{Type: subnet.EventAdded, Lease: e.lease})
		}
	}
	for k, l := range known {
		if _, ok := now[k]; !ok {
			batch = append(batch, subnet.Event{Type: subnet.EventRemoved, Lease: l})
		}
	}
	return batch, now
}

// watchStart is the revision a watch begins at after a listing at rev (a seam for the compaction test).
func (m *Manager) watchStart(rev int64) int64 {
	if m.startRev != nil {
		return m.startRev(rev)
	}
	return rev + 1
}

// watchFrom relays changes under <prefix>/subnets/ from revision rev until the watch fails or ctx ends.
func (m *Manager) watchFrom(ctx context.Context, rev int64, known map[string]subnet.Lease, out chan<- []subnet.Event) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wc := m.cli.Watch(wctx, m.subnetsDir(), clientv3.WithPrefix(), clientv3.WithRev(rev))
	for resp := range wc {
		if err := resp.Err(); err != nil {
			return err
		}
		var batch []subnet.Event
		for _, ev := range resp.Events {
			e, ok := m.parseKV(ev.Kv)
			if !ok {
				continue
			}
			switch {
			case ev.Type == clientv3.EventTypePut && !e.invalid:
				known[e.key] = e.lease
				batch = append(batch, subnet.Event{Type: subnet.EventAdded, Lease: e.lease})
			case ev.Type == clientv3.EventTypeDelete || e.invalid:
				if l, ok := known[e.key]; ok {
					e.lease = l // with its attributes
				}
				delete(known, e.key)
				batch = append(batch, subnet.Event{Type: subnet.EventRemoved, Lease: e.lease})
			}
		}
		if len(batch) > 0 && !send(ctx, out, batch) {
			return ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("watch channel closed")
}

// WatchLease follows this node's own lease key. The caller holds the lease when it starts watching; from then on
// a deletion or expiry is reported once as EventRemoved and a re-creation of the key as EventAdded.
func (m *Manager) WatchLease(ctx context.Context, l *subnet.Lease, out chan<- []subnet.Event) error {
	key := m.subnetsDir() + l.Key()
	present := true // as far as the caller knows
	last := *l
	b := backoff{}
	for {
		resp, err := m.cli.Get(ctx, key)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			klog.Errorf("watch own lease %s: %v (retrying)", l.Key(), err)
			if !sleep(ctx, b.next()) {
				return ctx.Err()
			}
			continue
		}
		var ev []subnet.Event
		if len(resp.Kvs) == 0 && present {
			ev = []subnet.Event{{Type: subnet.EventRemoved, Lease: last}}
			present = false
		} else if len(resp.Kvs) == 1 {
			if e, ok := m.parseKV(resp.Kvs[0]); ok && !e.invalid && (!present || e.lease.Asof != last.Asof) {
				ev = []subnet.Event{{Type: subnet.EventAdded, Lease: e.lease}}
				last, present = e.lease, true
			}
		}
		if ev != nil && !send(ctx, out, ev) {
			return ctx.Err()
		}
		err = m.watchOwn(ctx, key, m.watchStart(resp.Header.Revision), &present, &last, out)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		klog.Infof("watch of own lease %s ended (%v); reading it again", l.Key(), err)
		if !sleep(ctx, b.next()) {
			return ctx.Err()
		}
	}
}

func (m *Manager) watchOwn(ctx context.Context, key string, rev int64, present *bool, last *subnet.Lease, out chan<- []subnet.Event) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wr := range m.cli.Watch(wctx, key, clientv3.WithRev(rev)) {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			e, ok := m.parseKV(ev.Kv)
			if !ok {
				continue
			}
			var b []subnet.Event
			switch {
			case ev.Type == clientv3.EventTypeDelete:
				if *present {
					b = []subnet.Event{{Type: subnet.EventRemoved, Lease: *last}}
				}
				*present = false
			case !e.invalid:
				b = []subnet.Event{{Type: subnet.EventAdded, Lease: e.lease}}
				*last, *present = e.lease, true
			}
			if b != nil && !send(ctx, out, b) {
				return ctx.Err()
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("watch channel closed")
}

// backoff doubles a wait from 100 ms up to 10 s, with jitter.
type backoff struct{ d time.Duration }

func (b *backoff) next() time.Duration {
	b.d = min(max(2*b.d, 100*time.Millisecond), 10*time.Second)
	return b.d/2 + rand.N(b.d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func send(ctx context.Context, out chan<- []subnet.Event, b []subnet.Event) bool {
	select {
	case out <- b:
		return true
	case <-ctx.Done():
		return false
	}
}
