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
	"net/netip"
	"strings"
	"sync"
	"time"

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
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("etcd client for %v: %w", o.Endpoints, err)
	}
	go func() { <-ctx.Done(); cli.Close() }()
	return &Manager{cli: cli, prefix: strings.TrimSuffix(o.Prefix, "/"), opts: o}, nil
}

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
	key     string
	lease   subnet.Lease
	etcdID  clientv3.LeaseID
	modRev  int64
	invalid bool // unparsable value: kept (never handed out) but ignored
}

func (m *Manager) parseKV(key string, value []byte, id int64, modRev int64) (entry, bool) {
	name := strings.TrimPrefix(key, m.subnetsDir())
	v4, v6, err := subnet.ParseLeaseKey(name)
	if err != nil {
		return entry{}, false
	}
	e := entry{key: key, etcdID: clientv3.LeaseID(id), modRev: modRev}
	e.lease = subnet.Lease{Subnet: v4, IPv6Subnet: v6, EnableIPv4: v4.IsValid(), EnableIPv6: v6.IsValid(), Asof: modRev}
	if err := json.Unmarshal(value, &e.lease.Attrs); err != nil {
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
		if e, ok := m.parseKV(string(kv.Key), kv.Value, kv.Lease, kv.ModRevision); ok {
			out = append(out, e)
		}
	}
	return out, resp.Header.Revision, nil
}

// samePublicIP tells whether a stored lease belongs to the node publishing attrs.
func samePublicIP(stored, attrs *subnet.LeaseAttrs) bool {
	if attrs.PublicIP.IsValid() {
		return stored.PublicIP == attrs.PublicIP
	}
	return attrs.PublicIPv6.IsValid() && stored.PublicIPv6 == attrs.PublicIPv6
}

// fits tells whether a stored lease is usable under the current configuration.
func fits(cfg *subnet.Config, l *subnet.Lease) bool {
	if cfg.EnableIPv4 && !cfg.Network.Contains(l.Subnet.Addr()) || cfg.EnableIPv4 && l.Subnet.Bits() != cfg.SubnetLen {
		return false
	}
	if cfg.EnableIPv6 && (!cfg.IPv6Network.Contains(l.IPv6Subnet.Addr()) || l.IPv6Subnet.Bits() != cfg.IPv6SubnetLen) {
		return false
	}
	if !cfg.EnableIPv6 && l.IPv6Subnet.IsValid() || !cfg.EnableIPv4 && l.Subnet.IsValid() {
		return false
	}
	return true
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

// AcquireLease implements subnet.Manager.
func (m *Manager) AcquireLease(ctx context.Context, attrs *subnet.LeaseAttrs) (*subnet.Lease, error) {
	cfg, err := m.config(ctx)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for try := 0; try < 10; try++ {
		l, err := m.tryAcquire(ctx, cfg, attrs)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, errRace) {
			return nil, err
		}
		lastErr = err
	}
	return nil, fmt.Errorf("acquire lease: %w", lastErr)
}

var errRace = errors.New("lease changed concurrently")

func (m *Manager) tryAcquire(ctx context.Context, cfg *subnet.Config, attrs *subnet.LeaseAttrs) (*subnet.Lease, error) {
	entries, _, err := m.list(ctx)
	if err != nil {
		return nil, err
	}
	value, err := json.Marshal(attrs)
	if err != nil {
		return nil, err
	}
	taken4, taken6 := map[netip.Prefix]bool{}, map[netip.Prefix]bool{}
	for _, e := range entries {
		taken4[e.lease.Subnet] = true
		taken6[e.lease.IPv6Subnet] = true
	}
	// 1. Our own lease (or reservation), matched by PublicIP.
	for _, e := range entries {
		if e.invalid || !samePublicIP(&e.lease.Attrs, attrs) || !fits(cfg, &e.lease) {
			continue
		}
		if e.etcdID == 0 {
			// A reservation: keep it without a TTL, update the attributes.
			txn := m.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(e.key), "=", e.modRev)).
				Then(clientv3.OpPut(e.key, string(value)))
			return m.commit(ctx, txn, e.lease.Subnet, e.lease.IPv6Subnet, attrs, 0, "reservation")
		}
		grant, err := m.cli.Grant(ctx, int64(m.opts.TTL/time.Second))
		if err != nil {
			return nil, fmt.Errorf("grant etcd lease: %w", err)
		}
		txn := m.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(e.key), "=", e.modRev)).
			Then(clientv3.OpPut(e.key, string(value), clientv3.WithLease(grant.ID)))
		l, err := m.commit(ctx, txn, e.lease.Subnet, e.lease.IPv6Subnet, attrs, grant.ID, "existing lease")
		if err == nil && e.etcdID != grant.ID {
			_, _ = m.cli.Revoke(ctx, e.etcdID) // the key moved to the new lease; the old one only holds nothing now
		}
		return l, err
	}
	// 2. The subnet of the previous subnet.env, if free.
	var want4, want6 netip.Prefix
	if m.opts.SubnetFile != "" {
		if env, err := subnet.ReadEnvFile(m.opts.SubnetFile); err == nil {
			if cfg.EnableIPv4 && env.Subnet.IsValid() {
				want4 = env.Subnet.Masked()
			}
			if cfg.EnableIPv6 && env.IPv6Subnet.IsValid() {
				want6 = env.IPv6Subnet.Masked()
			}
		}
	}
	if cfg.EnableIPv4 && (!cfg.V4Range().Contains(want4) || taken4[want4]) {
		want4 = netip.Prefix{}
	}
	if cfg.EnableIPv6 && (!cfg.V6Range().Contains(want6) || taken6[want6]) {
		want6 = netip.Prefix{}
	}
	how := "subnet from " + m.opts.SubnetFile
	// 3. Random free subnets for whatever is still missing.
	if cfg.EnableIPv4 && !want4.IsValid() {
		if want4, err = cfg.V4Range().PickFree(taken4); err != nil {
			return nil, fmt.Errorf("allocate an IPv4 subnet of /%d in %s: %w", cfg.SubnetLen, cfg.Network, err)
		}
		how = "new subnet"
	}
	if cfg.EnableIPv6 && !want6.IsValid() {
		if want6, err = cfg.V6Range().PickFree(taken6); err != nil {
			return nil, fmt.Errorf("allocate an IPv6 subnet of /%d in %s: %w", cfg.IPv6SubnetLen, cfg.IPv6Network, err)
		}
		how = "new subnet"
	}
	key := m.subnetsDir() + subnet.LeaseKey(want4, want6)
	grant, err := m.cli.Grant(ctx, int64(m.opts.TTL/time.Second))
	if err != nil {
		return nil, fmt.Errorf("grant etcd lease: %w", err)
	}
	txn := m.cli.Txn(ctx).If(clientv3.Compare(clientv3.Version(key), "=", 0)).
		Then(clientv3.OpPut(key, string(value), clientv3.WithLease(grant.ID)))
	l, err := m.commit(ctx, txn, want4, want6, attrs, grant.ID, how)
	if err != nil {
		_, _ = m.cli.Revoke(context.WithoutCancel(ctx), grant.ID)
	}
	return l, err
}

func (m *Manager) commit(ctx context.Context, txn clientv3.Txn, v4, v6 netip.Prefix, attrs *subnet.LeaseAttrs, id clientv3.LeaseID, how string) (*subnet.Lease, error) {
	resp, err := txn.Commit()
	if err != nil {
		return nil, fmt.Errorf("write lease %s: %w", subnet.LeaseKey(v4, v6), err)
	}
	if !resp.Succeeded {
		return nil, errRace
	}
	l := &subnet.Lease{Subnet: v4, IPv6Subnet: v6, EnableIPv4: v4.IsValid(), EnableIPv6: v6.IsValid(),
		Attrs: *attrs, Asof: resp.Header.Revision}
	if id != 0 {
		l.Expiration = time.Now().Add(m.opts.TTL)
	}
	klog.Infof("acquired lease %s (%s)", l.Key(), how)
	return l, nil
}

// RenewLease extends the lease's TTL to the full lifetime again.
func (m *Manager) RenewLease(ctx context.Context, l *subnet.Lease) error {
	key := m.subnetsDir() + l.Key()
	resp, err := m.cli.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", l.Key(), err)
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("renew lease %s: the key is gone", l.Key())
	}
	kv := resp.Kvs[0]
	if kv.Lease == 0 {
		return nil // a reservation never expires
	}
	grant, err := m.cli.Grant(ctx, int64(m.opts.TTL/time.Second))
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", l.Key(), err)
	}
	value, _ := json.Marshal(&l.Attrs)
	tr, err := m.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
		Then(clientv3.OpPut(key, string(value), clientv3.WithLease(grant.ID))).Commit()
	if err != nil || !tr.Succeeded {
		_, _ = m.cli.Revoke(context.WithoutCancel(ctx), grant.ID)
		if err == nil {
			err = errRace
		}
		return fmt.Errorf("renew lease %s: %w", l.Key(), err)
	}
	_, _ = m.cli.Revoke(ctx, clientv3.LeaseID(kv.Lease))
	l.Expiration = time.Now().Add(m.opts.TTL)
	l.Asof = tr.Header.Revision
	return nil
}

// CompleteLease has nothing to do in etcd mode.
func (m *Manager) CompleteLease(context.Context, *subnet.Lease) error { return nil }

// WatchLeases implements subnet.Manager: one snapshot batch, then changes. When the watch is compacted or
// broken it re-lists and reports the difference, so no change is lost.
func (m *Manager) WatchLeases(ctx context.Context, out chan<- []subnet.Event) error {
	known := map[string]subnet.Lease{}
	first := true
	for {
		entries, rev, err := m.list(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			klog.Errorf("watch leases: %v (retrying)", err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
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
		known = now
		if first || len(batch) > 0 {
			if batch == nil {
				batch = []subnet.Event{}
			}
			if !send(ctx, out, batch) {
				return ctx.Err()
			}
			first = false
		}
		if err := m.watchFrom(ctx, rev+1, known, out); err != nil && ctx.Err() == nil {
			klog.V(2).Infof("lease watch ended (%v); re-listing", err)
			continue
		}
		return ctx.Err()
	}
}

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
			key := string(ev.Kv.Key)
			switch ev.Type {
			case clientv3.EventTypePut:
				e, ok := m.parseKV(key, ev.Kv.Value, ev.Kv.Lease, ev.Kv.ModRevision)
				if !ok || e.invalid {
					continue
				}
				known[key] = e.lease
				batch = append(batch, subnet.Event{Type: subnet.EventAdded, Lease: e.lease})
			case clientv3.EventTypeDelete:
				l, ok := known[key]
				if !ok {
					e, ok2 := m.parseKV(key, nil, 0, ev.Kv.ModRevision)
					if !ok2 {
						continue
					}
					l = e.lease
				}
				delete(known, key)
				batch = append(batch, subnet.Event{Type: subnet.EventRemoved, Lease: l})
			}
		}
		if len(batch) > 0 && !send(ctx, out, batch) {
			return ctx.Err()
		}
	}
	return errors.New("watch channel closed")
}

// WatchLease reports changes to this node's own lease key; a deletion or expiry arrives as EventRemoved.
func (m *Manager) WatchLease(ctx context.Context, l *subnet.Lease, out chan<- []subnet.Event) error {
	key := m.subnetsDir() + l.Key()
	for {
		resp, err := m.cli.Get(ctx, key)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		if len(resp.Kvs) == 0 {
			if !send(ctx, out, []subnet.Event{{Type: subnet.EventRemoved, Lease: *l}}) {
				return ctx.Err()
			}
			// Wait for the owner to re-create it before watching again.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wc := m.cli.Watch(wctx, key, clientv3.WithRev(resp.Header.Revision+1))
		removed := false
		for wr := range wc {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypeDelete {
					removed = true
				} else if e, ok := m.parseKV(key, ev.Kv.Value, ev.Kv.Lease, ev.Kv.ModRevision); ok && !e.invalid {
					if !send(ctx, out, []subnet.Event{{Type: subnet.EventAdded, Lease: e.lease}}) {
						cancel()
						return ctx.Err()
					}
				}
			}
			if removed {
				break
			}
		}
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
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
