package pool

// Quarantine: taking an address out of service for good (Quarantine), and the Assigned records SetENIs
// quarantined because the cloud no longer lists them, reported once (Lost).

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

// Quarantine takes an address out of service for good (until a restart's reconcile or the Release of the pod
// holding it): its record, or a new one, becomes Quarantined with the reason. The quarantine holds in memory even
// when the save fails (handing the address out would be the worse error); the save's error is returned.
func (p *Pool) Quarantine(ip netip.Addr, reason string) error {
	p.begin()
	defer p.mu.Unlock()
	if !ip.Is4() {
		return fmt.Errorf("quarantine: %v, want an IPv4 address", ip)
	}
	if reason == "" {
		reason = "quarantined by weftd"
	}
	changed := false
	rs := p.recs[ip]
	for _, r := range rs {
		if r.State == checkpoint.Quarantined {
			return nil
		}
	}
	for _, r := range rs {
		p.unreserve(r)
		r.State, r.Reason, r.ReservedUntil = checkpoint.Quarantined, reason, time.Time{}
		r.Reserve, r.StatefulSet = false, ""
		if r.ContainerID != "" {
			p.pods[podKey{r.ContainerID, r.IfName}] = r
		}
		changed = true
	}
	if !changed {
		r := &checkpoint.Record{IP: ip, State: checkpoint.Quarantined, Reason: reason}
		if a := p.addrs[ip]; a != nil {
			r.ENI = a.eni
			a.releasing = false
		}
		p.addRec(r)
	}
	p.notify()
	return p.save()
}

// Lost returns, once, the Assigned records quarantined because the cloud no longer lists their address on their
// ENI (the pods to report).
func (p *Pool) Lost() []checkpoint.Record {
	p.begin()
	defer p.mu.Unlock()
	l := p.lost
	p.lost = nil
	return l
}
