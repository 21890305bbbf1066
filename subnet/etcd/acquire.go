package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/subnet"
)

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
