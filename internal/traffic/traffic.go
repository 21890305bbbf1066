// Package traffic writes upstream flanneld's masquerade and forward rules, so a weft node's firewall looks
// exactly like a flannel node's: in iptables mode the chains FLANNEL-POSTRTG (nat, jumped to from POSTROUTING)
// and FLANNEL-FWD (filter, from FORWARD) with upstream's rules, order and "flanneld masq"/"flanneld forward"
// comments; in nftables mode (net-conf EnableNFTables) the tables flannel-ipv4 / flannel-ipv6 with chains
// postrtg and forward.
//
// Ensure reads each chain's rules, in order, as the firewall tool prints them (`iptables -S`, `nft list table`) and,
// when anything is missing, out of order, changed or left from an older subnet, rewrites the chain whole, as
// upstream does. Comparing the text, not the number of rules, matters: a new pod subnet gives as many rules as the
// old one. Run repeats that every --iptables-resync period so a flushed firewall is repaired. Rules are left in
// place on shutdown.
package traffic

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"k8s.io/klog/v2"
)

// Options describe the rules wanted.
type Options struct {
	Network     netip.Prefix // cluster IPv4 network (C); invalid when IPv4 is off
	Subnet      netip.Prefix // this node's IPv4 subnet (P); invalid for a backend without per-node subnets
	IPv6Network netip.Prefix
	IPv6Subnet  netip.Prefix
	Masquerade  bool // --ip-masq
	Forward     bool // --iptables-forward-rules
	// RandomFullyOff is --ip-masq-fully-random-disable.
	RandomFullyOff bool
	NFTables       bool // net-conf EnableNFTables
	// NoMasquerade are destinations reached without masquerading (the VPC of a cloud-routed backend), before
	// upstream's MASQUERADE rules.
	NoMasquerade []netip.Prefix
}

// Manager keeps the rules in place.
type Manager struct {
	o       Options
	writers []writer
}

// writer is one family in one firewall implementation.
type writer interface {
	name() string
	ensure() error
}

// New prepares the writers for the enabled families. It fails when a needed program is missing.
func New(o Options) (*Manager, error) {
	m := &Manager{o: o}
	if !o.Masquerade && !o.Forward {
		return m, nil
	}
	for _, fam := range []struct {
		v6          bool
		network, sn netip.Prefix
	}{{false, o.Network, o.Subnet}, {true, o.IPv6Network, o.IPv6Subnet}} {
		if !fam.network.IsValid() {
			continue
		}
		var pod netip.Prefix
		if fam.sn.IsValid() {
			pod = fam.sn.Masked()
		}
		spec := ruleSpec{v6: fam.v6, cluster: fam.network.Masked(), pod: pod, masq: o.Masquerade,
			forward: o.Forward, randomFully: !o.RandomFullyOff}
		for _, p := range o.NoMasquerade {
			if p.Addr().Is6() == fam.v6 {
				spec.noMasq = append(spec.noMasq, p.Masked())
			}
		}
		var w writer
		var err error
		if o.NFTables {
			w, err = newNFT(spec)
		} else {
			w, err = newIPT(spec)
		}
		if err != nil {
			return nil, err
		}
		m.writers = append(m.writers, w)
	}
	return m, nil
}

// Ensure puts every rule in place now.
func (m *Manager) Ensure(context.Context) error {
	var errs []error
	for _, w := range m.writers {
		if err := w.ensure(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", w.name(), err))
		}
	}
	return errors.Join(errs...)
}

// Run re-ensures the rules every period until ctx ends.
func (m *Manager) Run(ctx context.Context, period time.Duration) {
	if len(m.writers) == 0 {
		return
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Ensure(ctx); err != nil {
				klog.Errorf("resync rules: %v", err)
			}
		}
	}
}

// ruleSpec is one family's inputs.
type ruleSpec struct {
	v6          bool
	cluster     netip.Prefix
	pod         netip.Prefix
	masq        bool
	forward     bool
	randomFully bool
	noMasq      []netip.Prefix
}

func (s ruleSpec) multicast() string {
	if s.v6 {
		return "ff00::/8"
	}
	return "224.0.0.0/4"
}
