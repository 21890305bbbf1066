package pool

// The records: the checkpoint's Assigned, Cooldown, Quarantined and Reserved records kept in step with the
// indexes by pod, the end of cooldowns with time (tick), and saving them (save, Sync, Records, Lookup).

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

// cooling notes the end of a Cooldown record's cooldown for tick.
func (p *Pool) cooling(r *checkpoint.Record) {
	if end := r.ReleasedAt.Add(p.cfg.Cooldown); r.State == checkpoint.Cooldown && (p.coolEnd.IsZero() || end.Before(p.coolEnd)) {
		p.coolEnd = end
	}
}

// addRec and delRec keep recs and pods in step. delRec frees a listed address its last record leaves.
func (p *Pool) addRec(r *checkpoint.Record) {
	p.recs[r.IP] = append(p.recs[r.IP], r)
	p.index(r)
}

// index enters a record of recs in pods or reserved by its state, and notes its cooldown or reservation end.
func (p *Pool) index(r *checkpoint.Record) {
	p.cooling(r)
	p.reserving(r)
	if r.State != checkpoint.Cooldown && r.ContainerID != "" {
		p.pods[podKey{r.ContainerID, r.IfName}] = r
	}
}

func (p *Pool) delRec(r *checkpoint.Record, freedAt time.Time) {
	rs := slices.DeleteFunc(p.recs[r.IP], func(x *checkpoint.Record) bool { return x == r })
	if len(rs) == 0 {
		delete(p.recs, r.IP)
		if a := p.addrs[r.IP]; a != nil {
			p.free(a, freedAt)
		}
	} else {
		p.recs[r.IP] = rs
	}
	if k := (podKey{r.ContainerID, r.IfName}); p.pods[k] == r {
		delete(p.pods, k)
	}
	p.unreserve(r)
}

// free marks an address held by no one since at and draws its reclaim jitter.
func (p *Pool) free(a *addr, at time.Time) {
	f := p.rand()
	if !(f >= 0 && f < 1) { // a Rand out of its range (or NaN) must not stretch the wait without bound
		f = 0
	}
	a.since = at
	a.wait = p.cfg.IdleReclaimAfter + time.Duration(float64(p.cfg.IdleReclaimAfter)*f*p.cfg.ReclaimJitter)
}

func (p *Pool) idle(a *addr) bool {
	e := p.enis[a.eni]
	return e != nil && e.Usable && !a.releasing && len(p.recs[a.ip]) == 0
}

// tick ends the cooldowns that are over at now; it reports whether any did.
func (p *Pool) tick(now time.Time) bool {
	ended := p.expireReservations(now) // first: an ended reservation whose cooldown is over is idle at once
	if p.coolEnd.IsZero() || now.Before(p.coolEnd) {
		if ended {
			p.unsaved = true
			p.notify()
		}
		return ended // the common case, in O(1): Allocate must not scan every record
	}
	var over []*checkpoint.Record
	p.coolEnd = time.Time{}
	for _, rs := range p.recs {
		for _, r := range rs {
			if r.State != checkpoint.Cooldown {
				continue
			}
			if end := r.ReleasedAt.Add(p.cfg.Cooldown); !now.Before(end) {
				over = append(over, r)
			} else if p.coolEnd.IsZero() || end.Before(p.coolEnd) {
				p.coolEnd = end
			}
		}
	}
	for _, r := range over {
		p.delRec(r, r.ReleasedAt.Add(p.cfg.Cooldown))
	}
	if len(over) > 0 || ended {
		p.unsaved = true
		p.notify()
	}
	return len(over) > 0 || ended
}

func (p *Pool) records() []checkpoint.Record {
	ptrs := make([]*checkpoint.Record, 0, len(p.recs))
	for _, rs := range p.recs {
		ptrs = append(ptrs, rs...)
	}
	slices.SortFunc(ptrs, func(a, b *checkpoint.Record) int {
		if c := a.IP.Compare(b.IP); c != 0 { // cmp.Or would compare every field every time
			return c
		}
		return cmp.Or(cmp.Compare(a.State, b.State), cmp.Compare(a.ContainerID, b.ContainerID),
			cmp.Compare(a.IfName, b.IfName), cmp.Compare(a.Reason, b.Reason))
	})
	out := make([]checkpoint.Record, len(ptrs))
	for i, r := range ptrs {
		out[i] = *r
	}
	return out
}

func (p *Pool) save() error {
	if err := p.cp.Save(&checkpoint.File{Version: checkpoint.Version, Instance: p.cfg.Instance, Records: p.records()}); err != nil {
		return fmt.Errorf("save the address checkpoint: %w", err)
	}
	p.unsaved = false
	return nil
}

// Sync saves the checkpoint if records changed since the last save without one: cooldowns and reservations that
// ended with time, addresses SetENIs quarantined. weftd calls it now and then, so the file on disk says what the
// pool does (a restart would come to the same from the older file).
func (p *Pool) Sync() error {
	p.begin()
	defer p.mu.Unlock()
	if !p.unsaved {
		return nil
	}
	return p.save()
}

// Lookup returns the pod's record (Assigned or Quarantined).
func (p *Pool) Lookup(containerID, ifName string) (checkpoint.Record, bool) {
	p.mu.Lock() // a pod's record does not depend on the time
	defer p.mu.Unlock()
	if r := p.pods[podKey{containerID, ifName}]; r != nil {
		return *r, true
	}
	return checkpoint.Record{}, false
}

// Records returns the records to checkpoint: Assigned, Cooldown, Quarantined and Reserved, sorted by address.
func (p *Pool) Records() []checkpoint.Record {
	p.begin()
	defer p.mu.Unlock()
	return p.records()
}
