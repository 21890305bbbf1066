package pool

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

const ttl = 5 * time.Minute

func reserveConfig() Config {
	c := testConfig()
	c.ReserveTTL = ttl
	return c
}

// sts is a StatefulSet's pod web-<ord>, attachment n (a new container each time it is created again).
func sts(ord, n int) Pod {
	return Pod{ContainerID: fmt.Sprintf("web%d-c%d", ord, n), Netns: fmt.Sprintf("/var/run/netns/w%d-%d", ord, n), IfName: "eth0",
		Namespace: "default", Name: fmt.Sprintf("web-%d", ord), Reserve: true, StatefulSet: "web"}
}

func recordOf(t *testing.T, p *Pool, a netip.Addr) checkpoint.Record {
	t.Helper()
	var out []checkpoint.Record
	for _, r := range p.Records() {
		if r.IP == a {
			out = append(out, r)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%d records of %s: %+v", len(out), a, out)
	}
	return out[0]
}

func noRecord(t *testing.T, p *Pool, a netip.Addr) {
	t.Helper()
	for _, r := range p.Records() {
		if r.IP == a {
			t.Fatalf("%s still has a record: %+v", a, r)
		}
	}
}

// A reserved pod's release keeps its address (Reserved, saved); the pod made again within the TTL, in a new
// container, gets it back, and no other pod does meanwhile.
func TestReserveSameAddressAgain(t *testing.T) {
	p, clk, cp := newPool(t, reserveConfig())
	p.SetENIs([]ENI{eni(1, 4)})
	a := mustAllocate(t, p, sts(0, 1))
	if r := recordOf(t, p, a.IP); !r.Reserve || r.StatefulSet != "web" {
		t.Fatalf("assigned record %+v, want Reserve and the StatefulSet", r)
	}
	clk.Advance(time.Minute)
	released := clk.Now()
	mustRelease(t, p, sts(0, 1))
	_, f := cp.saved()
	want := checkpoint.Record{IfName: "eth0", PodNamespace: "default", PodName: "web-0", IP: a.IP, ENI: "eni-1", State: checkpoint.Reserved,
		Reserve: true, StatefulSet: "web", AssignedAt: t0, ReleasedAt: released, ReservedUntil: released.Add(ttl)}
	if !slices.Equal(f.Records, []checkpoint.Record{want}) {
		t.Fatalf("saved %+v\nwant %+v", f.Records, want)
	}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Reserved != 1 || s.Idle != 3 || s.Assigned != 0 {
		t.Fatalf("stats %+v, want 1 reserved, 3 idle", s)
	}
	// Others come and go and never get it, however long they wait (within the TTL).
	for i := range 3 {
		if b := mustAllocate(t, p, pod(i)); b.IP == a.IP {
			t.Fatalf("pod %d got the reserved address", i)
		}
	}
	clk.Advance(ttl - time.Minute - time.Second)
	if _, err := p.Allocate(pod(9)); !errors.Is(err, ErrNoIdle) {
		t.Fatalf("a 4th pod on 4 addresses, one reserved: %v, want ErrNoIdle", err)
	}
	p.Abandon("c9", "eth0")
	b := mustAllocate(t, p, sts(0, 2))
	if b.IP != a.IP || b.ENI.ID != "eni-1" {
		t.Fatalf("web-0 again got %s, want %s", b.IP, a.IP)
	}
	r := recordOf(t, p, a.IP)
	if r.State != checkpoint.Assigned || r.ContainerID != "web0-c2" || r.Netns != "/var/run/netns/w0-2" || !r.AssignedAt.Equal(clk.Now()) ||
		!r.ReservedUntil.IsZero() || !r.ReleasedAt.IsZero() || !r.Reserve {
		t.Fatalf("taken again: %+v", r)
	}
	if _, f := cp.saved(); f.Validate() != nil || !slices.ContainsFunc(f.Records, func(x checkpoint.Record) bool { return x.ContainerID == "web0-c2" }) {
		t.Fatalf("not saved: %+v", f.Records)
	}
}

// The TTL passes: the reservation ends into the cooldown from the release, so the address is idle once both the
// TTL and the cooldown after the pod's last use are over.
func TestReserveExpires(t *testing.T) {
	for _, c := range []struct {
		name     string
		ttl      time.Duration
		idleFrom time.Duration // after the release
	}{{"TTL longer than the cooldown", ttl, ttl}, {"TTL shorter", 20 * time.Second, 30 * time.Second}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := reserveConfig()
			cfg.ReserveTTL = c.ttl
			p, clk, _ := newPool(t, cfg)
			p.SetENIs([]ENI{eni(1, 2)})
			a := mustAllocate(t, p, sts(0, 1))
			mustRelease(t, p, sts(0, 1))
			if pl := p.Plan(); !pl.NextCheck.Equal(clk.Now().Add(c.ttl)) {
				t.Errorf("NextCheck %v, want the reservation's end %v", pl.NextCheck, clk.Now().Add(c.ttl))
			}
			clk.Advance(c.ttl - time.Nanosecond)
			if r := recordOf(t, p, a.IP); r.State != checkpoint.Reserved {
				t.Fatalf("before the end: %+v", r)
			}
			clk.Advance(time.Nanosecond)
			if c.idleFrom > c.ttl {
				if r := recordOf(t, p, a.IP); r.State != checkpoint.Cooldown || r.Reserve || !r.ReservedUntil.IsZero() || r.IfName != "" {
					t.Fatalf("at the end: %+v, want Cooldown", r)
				}
				if p.isIdle(a.IP) {
					t.Fatal("idle within the cooldown")
				}
				clk.Advance(c.idleFrom - c.ttl)
			}
			noRecord(t, p, a.IP)
			if !p.isIdle(a.IP) || p.Stats().Reserved != 0 {
				t.Fatalf("not idle after the reservation and the cooldown: %+v", p.Stats())
			}
			// The pod back after the end: any address, and a reservation again on its next release.
			b := mustAllocate(t, p, sts(0, 2))
			mustRelease(t, p, sts(0, 2))
			if r := recordOf(t, p, b.IP); r.State != checkpoint.Reserved {
				t.Fatalf("next release: %+v", r)
			}
		})
	}
}

// A reserved address takes a slot of the node's limit and is never released to the cloud.
func TestReserveCountsAgainstThePool(t *testing.T) {
	cfg := reserveConfig()
	cfg.MinIdle, cfg.TargetIdle, cfg.MaxIdle, cfg.IdleReclaimAfter = 0, 1, 1, 0
	cfg.Limits = Limits{InstanceType: "t", ENIs: 1, AddrsPerENI: 3}
	p, clk, _ := newPool(t, cfg)
	p.SetENIs([]ENI{eni(1, 3)})
	mustAllocate(t, p, pod(1)) // the primary
	r := mustAllocate(t, p, sts(0, 1))
	mustRelease(t, p, sts(0, 1))
	clk.Advance(time.Minute) // past the cooldown, within the TTL
	p2 := p
	if p2.Stats(); p2.isIdle(r.IP) {
		t.Fatal("a reserved address is idle")
	}
	if err := p2.BeginUnassign(Unassign{ENI: "eni-1", IPs: []netip.Addr{r.IP}}); err == nil {
		t.Fatal("BeginUnassign took a reserved address")
	}
	for _, u := range p2.Plan().Unassign {
		if slices.Contains(u.IPs, r.IP) {
			t.Fatalf("Plan releases the reserved %s", r.IP)
		}
	}
	mustAllocate(t, p2, pod(2)) // the last idle one
	_, err := p2.Allocate(pod(3))
	var le *LimitError
	if !errors.As(err, &le) || le.InUse != 3 {
		t.Fatalf("a 4th pod on a 3-pod node with one address reserved: %v, want a LimitError counting 3", err)
	}
	// The pod itself still gets back in: its address is its slot.
	if b := mustAllocate(t, p2, sts(0, 2)); b.IP != r.IP {
		t.Fatalf("web-0 at the limit got %s, want %s", b.IP, r.IP)
	}
}

// Plan sizes the pool without the reserved addresses: they are not idle, so it grows to the target beside them.
func TestReservePlanNotIdle(t *testing.T) {
	cfg := reserveConfig()
	cfg.MinIdle, cfg.TargetIdle, cfg.MaxIdle = 2, 2, 4
	p, _, _ := newPool(t, cfg)
	p.SetENIs([]ENI{eni(1, 3)})
	mustAllocate(t, p, sts(0, 1))
	mustRelease(t, p, sts(0, 1))
	mustAllocate(t, p, pod(1))
	// 1 reserved, 1 assigned, 1 idle: below the floor 2.
	pl := p.Plan()
	if n := countAssign(pl); n != 1 {
		t.Fatalf("plan %+v, want 1 more address (idle 1, target 2; the reserved one is not idle)", pl)
	}
}

func countAssign(pl Plan) int {
	n := pl.CreateENI
	for _, a := range pl.Assign {
		n += a.N
	}
	return n
}

// A second attachment of the same pod name while the first holds the address gets another one; the first's
// release then cools down (the second carries the pod on), and the second's release is the reservation.
func TestReserveSecondLivePod(t *testing.T) {
	p, _, _ := newPool(t, reserveConfig())
	p.SetENIs([]ENI{eni(1, 4)})
	a := mustAllocate(t, p, sts(0, 1))
	b := mustAllocate(t, p, sts(0, 2))
	if a.IP == b.IP {
		t.Fatalf("both attachments of web-0 hold %s", a.IP)
	}
	mustRelease(t, p, sts(0, 1))
	if r := recordOf(t, p, a.IP); r.State != checkpoint.Cooldown {
		t.Fatalf("the first attachment's address while the second lives: %+v, want Cooldown", r)
	}
	mustRelease(t, p, sts(0, 2))
	if r := recordOf(t, p, b.IP); r.State != checkpoint.Reserved {
		t.Fatalf("the last attachment's address: %+v, want Reserved", r)
	}
	if c := mustAllocate(t, p, sts(0, 3)); c.IP != b.IP {
		t.Fatalf("web-0 again got %s, want %s", c.IP, b.IP)
	}
	// Another pod of the StatefulSet, and a pod of the same name elsewhere, are other pods.
	other := sts(1, 1)
	if c := mustAllocate(t, p, other); c.IP == b.IP {
		t.Fatal("web-1 got web-0's address")
	}
}

// A pod of the reserved name that does not ask for a reservation ends it; so does EndReservation; and an address
// the cloud no longer lists when the pod comes back.
func TestReserveEnds(t *testing.T) {
	t.Run("pod without reservation", func(t *testing.T) {
		p, clk, _ := newPool(t, reserveConfig())
		p.SetENIs([]ENI{eni(1, 4)})
		a := mustAllocate(t, p, sts(0, 1))
		mustRelease(t, p, sts(0, 1))
		clk.Advance(10 * time.Second)
		plain := sts(0, 2)
		plain.Reserve, plain.StatefulSet = false, ""
		if b := mustAllocate(t, p, plain); b.IP == a.IP {
			t.Fatal("the address was handed over within the cooldown from its release")
		}
		if r := recordOf(t, p, a.IP); r.State != checkpoint.Cooldown || !r.ReleasedAt.Equal(t0) {
			t.Fatalf("reservation kept for a pod that does not ask: %+v, want Cooldown from the release", r)
		}
	})
	t.Run("EndReservation", func(t *testing.T) {
		p, clk, cp := newPool(t, reserveConfig())
		p.SetENIs([]ENI{eni(1, 4)})
		a := mustAllocate(t, p, sts(0, 1))
		mustRelease(t, p, sts(0, 1))
		if got, err := p.EndReservation("default", "web-1"); err != nil || len(got) != 0 {
			t.Fatalf("another pod's: %v %v", got, err)
		}
		cp.setFail(true)
		if _, err := p.EndReservation("default", "web-0"); !errors.Is(err, errDisk) {
			t.Fatalf("failed save: %v", err)
		}
		if r := recordOf(t, p, a.IP); r.State != checkpoint.Reserved {
			t.Fatalf("a failed save ended it: %+v", r)
		}
		cp.setFail(false)
		got, err := p.EndReservation("default", "web-0")
		if err != nil || len(got) != 1 || got[0].IP != a.IP {
			t.Fatalf("EndReservation: %+v %v", got, err)
		}
		if r := recordOf(t, p, a.IP); r.State != checkpoint.Cooldown {
			t.Fatalf("ended into %+v, want Cooldown", r)
		}
		if _, f := cp.saved(); f.Records[0].State != checkpoint.Cooldown {
			t.Fatalf("not saved: %+v", f.Records)
		}
		clk.Advance(30 * time.Second)
		noRecord(t, p, a.IP)
		if !p.isIdle(a.IP) {
			t.Fatal("not idle after the cooldown")
		}
	})
	t.Run("address gone from the cloud", func(t *testing.T) {
		p, _, _ := newPool(t, reserveConfig())
		p.SetENIs([]ENI{eni(1, 4)})
		a := mustAllocate(t, p, sts(0, 1))
		mustRelease(t, p, sts(0, 1))
		e := eni(1, 4)
		e.Addrs = slices.DeleteFunc(e.Addrs, func(x netip.Addr) bool { return x == a.IP })
		p.SetENIs([]ENI{e})
		if r := recordOf(t, p, a.IP); r.State != checkpoint.Reserved {
			t.Fatalf("SetENIs changed a reservation: %+v", r)
		}
		if b := mustAllocate(t, p, sts(0, 2)); b.IP == a.IP {
			t.Fatal("got an address the cloud does not list")
		}
		if p.Stats().Reserved != 0 {
			t.Fatal("still reserved")
		}
	})
	t.Run("ENI not usable yet: the pod waits for it", func(t *testing.T) {
		p, _, _ := newPool(t, reserveConfig())
		p.SetENIs([]ENI{eni(1, 4), eni(2, 4)})
		a := mustAllocate(t, p, sts(0, 1))
		mustRelease(t, p, sts(0, 1))
		e := eni(1, 4)
		e.Usable = false
		p.SetENIs([]ENI{e, eni(2, 4)})
		if _, err := p.Allocate(sts(0, 2)); !errors.Is(err, ErrNoIdle) {
			t.Fatalf("%v, want ErrNoIdle", err)
		}
		p.SetENIs([]ENI{eni(1, 4), eni(2, 4)})
		if b := mustAllocate(t, p, sts(0, 2)); b.IP != a.IP {
			t.Fatalf("got %s, want %s", b.IP, a.IP)
		}
	})
}

// A failed save undoes a reservation being taken or made.
func TestReserveSaveFails(t *testing.T) {
	p, _, cp := newPool(t, reserveConfig())
	p.SetENIs([]ENI{eni(1, 4)})
	a := mustAllocate(t, p, sts(0, 1))
	cp.setFail(true)
	if _, _, err := p.Release(sts(0, 1).ContainerID, "eth0"); !errors.Is(err, errDisk) {
		t.Fatalf("release: %v", err)
	}
	if r := recordOf(t, p, a.IP); r.State != checkpoint.Assigned || r.ContainerID != "web0-c1" || p.Stats().Reserved != 0 {
		t.Fatalf("after a failed release: %+v", r)
	}
	cp.setFail(false)
	mustRelease(t, p, sts(0, 1))
	cp.setFail(true)
	if _, err := p.Allocate(sts(0, 2)); !errors.Is(err, errDisk) {
		t.Fatalf("allocate: %v", err)
	}
	if r := recordOf(t, p, a.IP); r.State != checkpoint.Reserved || r.ContainerID != "" {
		t.Fatalf("after a failed allocate: %+v", r)
	}
	if _, ok := p.Lookup("web0-c2", "eth0"); ok {
		t.Fatal("the failed allocation is the pod's")
	}
	cp.setFail(false)
	if b := mustAllocate(t, p, sts(0, 2)); b.IP != a.IP {
		t.Fatalf("got %s, want %s", b.IP, a.IP)
	}
}

// Reservations off (TTL 0): a pod that asks releases into the cooldown as any other; restored reservations end.
// Restored ones are kept across a restart, not stretched beyond the TTL from now, and refused twice for a pod.
func TestReserveRestored(t *testing.T) {
	now := t0
	res := checkpoint.Record{IfName: "eth0", PodNamespace: "default", PodName: "web-0", IP: ip(1, 2), ENI: "eni-1", State: checkpoint.Reserved,
		Reserve: true, StatefulSet: "web", ReleasedAt: now.Add(-time.Minute), ReservedUntil: now.Add(4 * time.Minute)}
	p, clk, _ := newPool(t, reserveConfig(), res)
	p.SetENIs([]ENI{eni(1, 4)})
	if s := p.Stats(); s.Reserved != 1 {
		t.Fatalf("restored: %+v", s)
	}
	if b := mustAllocate(t, p, sts(0, 2)); b.IP != res.IP {
		t.Fatalf("after a restart web-0 got %s, want %s", b.IP, res.IP)
	}
	_ = clk

	far := res
	far.ReservedUntil = now.Add(24 * time.Hour) // a clock that went back
	p, clk, _ = newPool(t, reserveConfig(), far)
	p.SetENIs([]ENI{eni(1, 4)})
	clk.Advance(ttl)
	if p.Stats().Reserved != 0 {
		t.Fatal("a reservation stretched beyond the TTL from the restart")
	}

	off := testConfig()
	p, _, _ = newPool(t, off, res)
	p.SetENIs([]ENI{eni(1, 4)})
	if s := p.Stats(); s.Reserved != 0 {
		t.Fatalf("reservations off, one restored: %+v", s)
	}
	a := mustAllocate(t, p, sts(1, 1))
	mustRelease(t, p, sts(1, 1))
	if r := recordOf(t, p, a.IP); r.State != checkpoint.Cooldown {
		t.Fatalf("reservations off: %+v", r)
	}

	dup := res
	dup.IP = ip(1, 3)
	if _, err := New(reserveConfig(), newClock(), &fakeCP{}, []checkpoint.Record{res, dup}); err == nil {
		t.Fatal("two reservations of one pod restored")
	}
	bad := res
	bad.ReservedUntil = time.Time{}
	if _, err := New(reserveConfig(), newClock(), &fakeCP{}, []checkpoint.Record{bad}); err == nil {
		t.Fatal("a reservation without its end restored")
	}
	neg := reserveConfig()
	neg.ReserveTTL = -time.Second
	if err := neg.Validate(); err == nil {
		t.Fatal("a negative TTL accepted")
	}
}

// Quarantining a reserved address ends the reservation: the pod coming back gets another address.
func TestReserveQuarantined(t *testing.T) {
	p, _, _ := newPool(t, reserveConfig())
	p.SetENIs([]ENI{eni(1, 4)})
	a := mustAllocate(t, p, sts(0, 1))
	mustRelease(t, p, sts(0, 1))
	if err := p.Quarantine(a.IP, "test"); err != nil {
		t.Fatal(err)
	}
	if b := mustAllocate(t, p, sts(0, 2)); b.IP == a.IP {
		t.Fatal("got a quarantined address")
	}
	if r := recordOf(t, p, a.IP); r.State != checkpoint.Quarantined || r.Reserve || !r.ReservedUntil.IsZero() || r.Validate() != nil {
		t.Fatalf("%+v %v", r, r.Validate())
	}
}

// Sync saves what changed with time alone (a reservation ending, then its cooldown), and nothing otherwise.
func TestSyncSavesTimeChanges(t *testing.T) {
	p, clk, cp := newPool(t, reserveConfig())
	p.SetENIs([]ENI{eni(1, 4)})
	a := mustAllocate(t, p, sts(0, 1))
	mustRelease(t, p, sts(0, 1))
	n, _ := cp.saved()
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	if m, _ := cp.saved(); m != n {
		t.Fatalf("Sync saved with nothing changed: %d saves, was %d", m, n)
	}
	clk.Advance(ttl)
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	m, f := cp.saved()
	if m != n+1 || len(f.Records) != 0 {
		t.Fatalf("after the reservation and the cooldown: %d saves, %+v; want one save of no record for %s", m, f.Records, a.IP)
	}
}
