package eni

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"k8s.io/klog/v2"

	"github.com/weftnet/weft/internal/eni/datapath"
)

// The host loop: the ENI tables and the pods' rules kept as the pool's records say.

// hostLoop keeps the host's pod rules equal to the pool's records and the ENIs' tables in place (restoring them
// when someone removes them), every few seconds.
func (n *Network) hostLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		if err := n.syncHost(); err != nil {
			klog.Warningf("eni: host rules: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Network) syncHost() error {
	held := n.heldENIs() // exclusive mode: ENIs inside their pods (exclusive.go)
	n.mu.Lock()
	tables := map[string]int{}
	links := map[string]datapath.ENILink{}
	v6 := map[string]eniV6{} // dual stack: the IPv6 side of usable ENIs set up for it (hostloop_v6.go)
	for id, e := range n.enis {
		if held[id] || isMember(e.ENI) {
			continue // no table, no rules: the pod routes through the ENI itself; a member has no host link (trunk.go)
		}
		if e.table != 0 {
			// Also while the ENI is not usable (it left the host, it is being set up again): its pods keep
			// their rules, to the table it had, until it is back (with its new table) or gone.
			tables[id] = e.table
		}
		if !e.usable {
			continue
		}
		mac, _ := net.ParseMAC(e.MAC)
		links[id] = datapath.ENILink{MAC: mac, Gateway: e.gateway, CIDR: e.cidr, Table: e.table, MTU: n.cfg.MTU}
		if e.gateway6.IsValid() {
			v6[id] = eniV6{gateway: e.gateway6, cidr: e.cidr6, table: e.table}
		}
	}
	n.mu.Unlock()
	var errs []error
	for id, l := range links {
		ifindex, err := n.d.host.EnsureENI(l)
		if err == nil {
			errs = append(errs, n.repairENIv6(id, ifindex, v6)...) // hostloop_v6.go
		}
		if err != nil {
			if errors.Is(err, datapath.ErrNotFound) {
				// The link of a usable ENI is gone: detached behind weftd's back. Stop serving its addresses,
				// report its pods and have the fill loop read the ENIs again now, not at the next sync.
				n.mu.Lock()
				st := n.enis[id]
				if st != nil {
					st.usable, st.gone, st.why = false, true, "its link left the host"
				}
				view := n.poolView()
				n.mu.Unlock()
				if st != nil {
					n.pool.SetENIs(view)
					n.leftHost(st)
				}
				n.poke()
			}
			errs = append(errs, err)
		}
	}
	// A pod's rules are the plugin's to make while its ADD is under way (wantRules); once it is done, or the
	// allocation is older, its rules are kept whole and right (a table that changed with its ENI's ifindex,
	// rules someone removed).
	records := n.pool.Records()
	now := n.d.clock.Now()
	var present map[netip.Addr]bool
	if anyYoung(records, now, ipv4Of) {
		obs, err := n.d.host.Observe()
		if err != nil {
			return errors.Join(append(errs, err)...) // nothing removed on a partial view
		}
		present = ruleAddrs(obs.Rules)
	}
	if err := n.d.host.SyncRules(wantRules(records, tables, now, present, ipv4Of)); err != nil {
		errs = append(errs, err)
	}
	if err := n.syncRules6(records, tables); err != nil { // hostloop_v6.go
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
