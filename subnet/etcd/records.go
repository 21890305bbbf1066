package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/subnet"
)

// entry is one stored lease.
type entry struct {
	key       string
	lease     subnet.Lease
	etcdID    clientv3.LeaseID // 0: a reservation
	modRev    int64
	createRev int64
	invalid   bool // unparsable value: its subnet counts as taken, but it is never reported or reused
	// hidden: readable but not a subnet the allocator hands out (outside the Network, another length); never
	// reported to the backends as a peer, while acquiring still sees it (a node's own incompatible lease is
	// replaced there, as upstream does).
	hidden bool
}

// parseKV reads one key under <prefix>/subnets/; ok is false for a key that is not a lease key at all.
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
		m.skip(key, kv.ModRevision, fmt.Sprintf("unreadable value: %v", err))
		e.invalid = true
	} else if why := m.misshapen(e.lease); why != "" {
		m.skip(key, kv.ModRevision, why)
		e.hidden = true
	}
	return e, true
}

// skip logs a lease that is never reported to the backends, once per revision of its key: a hostile or broken
// value must neither crash weftd nor flood its log on every re-list.
func (m *Manager) skip(key string, rev int64, why string) {
	if m.skipped.First(key, fmt.Sprintf("%d %s", rev, why)) {
		klog.Warningf("ignoring lease %s: %s", key, why)
	}
}

// misshapen tells why a lease cannot be one the allocator hands out: a subnet outside the Network or of another
// length than SubnetLen (such a lease could overlap, and steal traffic from, valid ones). "" when it is fine or
// the configuration is not read yet.
func (m *Manager) misshapen(l subnet.Lease) string {
	m.mu.Lock()
	c := m.cfg
	m.mu.Unlock()
	if c == nil {
		return ""
	}
	if p := l.Subnet; p.IsValid() && c.Network.IsValid() && (!c.Network.Contains(p.Addr()) || p.Bits() != c.SubnetLen) {
		return fmt.Sprintf("subnet %s is not a /%d of Network %s", p, c.SubnetLen, c.Network)
	}
	if p := l.IPv6Subnet; p.IsValid() && c.IPv6Network.IsValid() && (!c.IPv6Network.Contains(p.Addr()) || p.Bits() != c.IPv6SubnetLen) {
		return fmt.Sprintf("IPv6 subnet %s is not a /%d of IPv6Network %s", p, c.IPv6SubnetLen, c.IPv6Network)
	}
	return ""
}

// list reads every lease with the revision of the read, from which a watch can continue without a gap.
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
