package pool

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

// world drives a pool against a small in-test cloud and a model of the pods, checking the pool's promises after
// every step. The cloud hands out the lowest free address of its block, so addresses released by the pool (or
// taken away behind its back) come back, as they do in a real vSwitch.
type world struct {
	t     testing.TB
	cfg   Config
	clk   *fakeClock
	cp    *fakeCP
	p     *Pool
	rnd   *rand.Rand
	cloud []*cloudENI
	free  []netip.Addr // the vSwitch's free addresses, lowest first
	nENI  int

	pods      map[podKey]netip.Addr // pods holding an address (Assigned, or Quarantined while the host still has it)
	owner     map[netip.Addr]podKey
	broken    map[podKey]bool // pods whose record is quarantined: an ADD retry fails, a DEL releases
	released  map[netip.Addr]time.Time
	reserved  map[netip.Addr]reservation // addresses the pool keeps for a gone pod (Config.ReserveTTL)
	failSaves bool
}

type reservation struct {
	name  string
	until time.Time
}

// podOf is the model's pod n: with reservations on, every third one asks to keep its address.
func (w *world) podOf(n int) Pod {
	pd := pod(n)
	if w.cfg.ReserveTTL > 0 && n%3 == 0 {
		pd.Reserve, pd.StatefulSet = true, "web"
	}
	return pd
}

// reservedNow: the reservation of ip still running, if any.
func (w *world) reservedNow(ip netip.Addr) (reservation, bool) {
	rv, ok := w.reserved[ip]
	return rv, ok && w.clk.Now().Before(rv.until)
}

type cloudENI struct {
	id     string
	addrs  []netip.Addr
	usable bool
}

func newWorld(t testing.TB, cfg Config, seed uint64) *world {
	w := &world{t: t, cfg: cfg, clk: newClock(), cp: &fakeCP{}, rnd: rand.New(rand.NewPCG(seed, 7)),
		pods: map[podKey]netip.Addr{}, owner: map[netip.Addr]podKey{}, broken: map[podKey]bool{}, released: map[netip.Addr]time.Time{}, reserved: map[netip.Addr]reservation{}}
	w.cfg.Rand = w.rnd.Float64
	for i := range cfg.Limits.Pods() + 8 {
		w.free = append(w.free, ip(100+i/250, 1+i%250))
	}
	p, err := New(w.cfg, w.clk, w.cp, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.p = p
	return w
}

func (w *world) fatalf(format string, a ...any) {
	w.t.Helper()
	w.t.Fatalf("at %s: "+format, append([]any{w.clk.Now().Sub(t0)}, a...)...)
}

func (w *world) view() []ENI {
	var out []ENI
	for _, e := range w.cloud {
		out = append(out, ENI{ID: e.id, MAC: "mac-" + e.id, Addrs: slices.Clone(e.addrs), Usable: e.usable})
	}
	return out
}

func (w *world) take(n int) []netip.Addr {
	n = min(n, len(w.free))
	got := slices.Clone(w.free[:n])
	w.free = w.free[n:]
	return got
}

func (w *world) giveBack(ip netip.Addr) {
	w.free = append(w.free, ip)
	slices.SortFunc(w.free, netip.Addr.Compare)
}

func (w *world) find(id string) *cloudENI {
	for _, e := range w.cloud {
		if e.id == id {
			return e
		}
	}
	return nil
}

func (w *world) add(n int) {
	pd := w.podOf(n)
	k := podKey{pd.ContainerID, pd.IfName}
	w.cp.setFail(w.failSaves)
	a, err := w.p.Allocate(pd)
	w.cp.setFail(false)
	held, has := w.pods[k]
	var le *LimitError
	var mine netip.Addr // the address reserved for this pod, still kept
	for ip, rv := range w.reserved {
		if _, on := w.reservedNow(ip); on && rv.name == pd.Name {
			mine = ip
		}
	}
	switch {
	case w.broken[k]:
		if err == nil || errors.Is(err, ErrNoIdle) || errors.As(err, &le) {
			w.fatalf("ADD retry of quarantined %s: %v %v, want an error", pd.ContainerID, a.IP, err)
		}
	case has:
		if err != nil || a.IP != held {
			w.fatalf("ADD retry of %s: %v %v, want %s", pd.ContainerID, a.IP, err, held)
		}
	case err == nil:
		if w.failSaves {
			w.fatalf("allocated %s with the checkpoint failing", a.IP)
		}
		if o, dup := w.owner[a.IP]; dup {
			w.fatalf("%s handed to %s while %s holds it", a.IP, pd.ContainerID, o.containerID)
		}
		if rv, on := w.reservedNow(a.IP); on && rv.name != pd.Name {
			w.fatalf("%s handed to %s while it is reserved for %s", a.IP, pd.Name, rv.name)
		}
		if mine.IsValid() && a.IP != mine {
			w.fatalf("%s got %s, not the address %s reserved for it", pd.Name, a.IP, mine)
		}
		if r, ok := w.released[a.IP]; ok && a.IP != mine && w.clk.Now().Before(r.Add(w.cfg.Cooldown)) {
			w.fatalf("%s handed out %s after its release, within the cooldown", a.IP, w.clk.Now().Sub(r))
		}
		e := w.find(a.ENI.ID)
		if e == nil || !e.usable || !slices.Contains(e.addrs, a.IP) {
			w.fatalf("%s handed out on %s, which the cloud does not list as usable with it", a.IP, a.ENI.ID)
		}
		w.pods[k], w.owner[a.IP] = a.IP, k
		delete(w.reserved, a.IP)
	case mine.IsValid() && (errors.Is(err, ErrNoIdle) || errors.As(err, &le)):
		w.fatalf("%s, whose address %s is reserved for it, got %v", pd.Name, mine, err)
	case errors.Is(err, ErrNoIdle):
		if s := w.p.Stats(); s.Idle != 0 || s.Waiting == 0 {
			w.fatalf("ErrNoIdle with %+v", s)
		}
	case errors.As(err, &le):
		if le.InUse != w.cfg.Limits.Pods() {
			w.fatalf("LimitError with %d in use of %d", le.InUse, w.cfg.Limits.Pods())
		}
	case errors.Is(err, errDisk) && w.failSaves:
		if _, ok := w.p.Lookup(pd.ContainerID, pd.IfName); ok {
			w.fatalf("a failed allocation left a record")
		}
	default:
		w.fatalf("ADD %s: %v", pd.ContainerID, err)
	}
}

func (w *world) del(n int) {
	pd := w.podOf(n)
	k := podKey{pd.ContainerID, pd.IfName}
	w.cp.setFail(w.failSaves)
	got, ok, err := w.p.Release(pd.ContainerID, pd.IfName)
	w.cp.setFail(false)
	held, has := w.pods[k]
	switch {
	case err != nil:
		if !w.failSaves || !errors.Is(err, errDisk) {
			w.fatalf("DEL %s: %v", pd.ContainerID, err)
		}
		if r, ok := w.p.Lookup(pd.ContainerID, pd.IfName); has != ok || ok && r.IP != held {
			w.fatalf("a failed release changed the record: %+v %v", r, ok)
		}
	case !has:
		if ok {
			w.fatalf("DEL of unknown %s released %s", pd.ContainerID, got)
		}
	case !ok || got != held:
		w.fatalf("DEL %s: %s %v, want %s", pd.ContainerID, got, ok, held)
	default:
		if pd.Reserve && !w.broken[k] {
			w.reserved[held] = reservation{pd.Name, w.clk.Now().Add(w.cfg.ReserveTTL)}
		}
		delete(w.pods, k)
		delete(w.owner, held)
		delete(w.broken, k)
		w.released[held] = w.clk.Now()
	}
}

// plan carries out one plan as weftd would: the calls, then Assigned/Unassigned, then a fresh view.
func (w *world) plan() (acted bool) {
	pl := w.p.Plan()
	for _, a := range pl.Assign {
		e := w.find(a.ENI)
		if e == nil || !e.usable || a.N < 1 || a.N > 10 || len(e.addrs)+a.N > w.cfg.Limits.AddrsPerENI {
			w.fatalf("plan asks %+v of %+v", a, e)
		}
		ips := w.take(a.N)
		e.addrs = append(e.addrs, ips...)
		w.p.Assigned(e.id, ips)
		acted = true
	}
	if n := pl.CreateENI; n > 0 {
		if n > 9 || n >= w.cfg.Limits.AddrsPerENI || len(w.cloud) >= w.cfg.Limits.ENIs {
			w.fatalf("plan creates an ENI with %d secondaries beside %d ENIs", n, len(w.cloud))
		}
		for _, e := range w.cloud {
			if !e.usable {
				w.fatalf("plan creates a second ENI while %s is set up", e.id)
			}
		}
		w.nENI++
		e := &cloudENI{id: fmt.Sprintf("eni-%d", w.nENI), addrs: w.take(n + 1)}
		w.cloud = append(w.cloud, e)
		w.p.Assigned(e.id, e.addrs)
		acted = true
	}
	for _, u := range pl.Unassign {
		e := w.find(u.ENI)
		for _, ip := range u.IPs {
			if _, held := w.owner[ip]; held {
				w.fatalf("plan releases %s, held by a pod", ip)
			}
			if rv, on := w.reservedNow(ip); on {
				w.fatalf("plan releases %s, reserved for %s", ip, rv.name)
			}
			if e == nil || len(e.addrs) == 0 || e.addrs[0] == ip {
				w.fatalf("plan releases %s, the primary of %s", ip, u.ENI)
			}
		}
		if err := w.p.BeginUnassign(u); err != nil {
			w.fatalf("BeginUnassign right after Plan: %v", err)
		}
		if w.rnd.IntN(4) == 0 {
			w.p.Unassigned(u.ENI, u.IPs, errors.New("Throttling"))
			acted = true
			continue
		}
		for _, ip := range u.IPs {
			e.addrs = slices.DeleteFunc(e.addrs, func(x netip.Addr) bool { return x == ip })
			w.giveBack(ip)
		}
		w.p.Unassigned(u.ENI, u.IPs, nil)
		acted = true
	}
	w.p.SetENIs(w.view())
	if pl.NextCheck.IsZero() == false && !pl.NextCheck.After(w.clk.Now()) {
		w.fatalf("NextCheck %v is not in the future", pl.NextCheck)
	}
	return acted
}

func (w *world) setUp() {
	for _, e := range w.cloud {
		e.usable = true
	}
	w.p.SetENIs(w.view())
}

// lose has the cloud drop an address of the node behind the pool's back (someone else unassigned it).
func (w *world) lose(n int) {
	var all []netip.Addr
	for _, e := range w.cloud {
		if len(e.addrs) > 1 {
			all = append(all, e.addrs[1:]...) // never the primary: the cloud cannot unassign it
		}
	}
	if len(all) == 0 {
		return
	}
	ip := all[n%len(all)]
	for _, e := range w.cloud {
		e.addrs = slices.DeleteFunc(e.addrs, func(x netip.Addr) bool { return x == ip })
	}
	w.giveBack(ip)
	delete(w.reserved, ip) // the pod that comes back gets another address
	w.p.SetENIs(w.view())
	lost := w.p.Lost()
	k, held := w.owner[ip]
	if held && !w.broken[k] {
		if len(lost) != 1 || lost[0].IP != ip || lost[0].ContainerID != k.containerID || lost[0].State != checkpoint.Quarantined {
			w.fatalf("lost %s of %s: Lost says %+v", ip, k.containerID, lost)
		}
		w.broken[k] = true // the pod keeps it on the host until its DEL
	} else if len(lost) != 0 {
		w.fatalf("lost idle %s: Lost says %+v", ip, lost)
	}
}

func (w *world) quarantine(n int) {
	var all []netip.Addr
	for _, e := range w.cloud {
		all = append(all, e.addrs...)
	}
	if len(all) == 0 {
		return
	}
	ip := all[n%len(all)]
	if err := w.p.Quarantine(ip, "test"); err != nil {
		w.fatalf("quarantine: %v", err)
	}
	delete(w.reserved, ip)
	if k, held := w.owner[ip]; held {
		w.broken[k] = true
	}
}

// restart starts a new pool from the last saved checkpoint, as weftd does (reconcile's output is the records).
func (w *world) restart() {
	_, f := w.cp.saved()
	var recs []checkpoint.Record
	if f != nil {
		recs = f.Records
	}
	p, err := New(w.cfg, w.clk, w.cp, recs)
	if err != nil {
		w.fatalf("restart: %v", err)
	}
	p.SetENIs(w.view())
	w.p = p
	// A pod whose address was lost is quarantined by the start's SetENIs again, unless its ENI lists the address
	// once more (the cloud handed it back): then the pod, still holding it on the host, has it again.
	p.Lost()
	for k := range w.pods {
		r, _ := p.Lookup(k.containerID, k.ifName)
		w.broken[k] = r.State == checkpoint.Quarantined
	}
}

// settle ends every wait and runs plans until the pool is quiet; idle must then lie between floor and ceiling.
func (w *world) settle() {
	for k := range w.p.waitingKeys() {
		w.p.Abandon(k.containerID, k.ifName)
	}
	w.p.SetDegraded(false, "")
	for range 100 {
		w.clk.Advance(w.cfg.Cooldown + 2*w.cfg.IdleReclaimAfter)
		w.setUp()
		if !w.plan() && !w.settingUp() {
			break
		}
	}
	s := w.p.Stats()
	total := 0
	for _, e := range w.cloud {
		total += len(e.addrs)
	}
	full := total >= w.cfg.Limits.Pods() || len(w.cloud) == w.cfg.Limits.ENIs && total >= w.cfg.Limits.ENIs*w.cfg.Limits.AddrsPerENI
	if s.Idle < w.cfg.MinIdle && !full {
		w.fatalf("settled below the floor: %+v with %d addresses on %d ENIs", s, total, len(w.cloud))
	}
	if s.Idle > w.cfg.MaxIdle && w.idleSecondaries() > 0 {
		w.fatalf("settled above the ceiling: %+v", s)
	}
}

func (w *world) settingUp() bool {
	for _, e := range w.cloud {
		if !e.usable {
			return true
		}
	}
	return false
}

func (w *world) idleSecondaries() int {
	n := 0
	for _, e := range w.cloud {
		for _, ip := range e.addrs[1:] {
			if _, held := w.owner[ip]; !held && w.p.isIdle(ip) {
				n++
			}
		}
	}
	return n
}

// check asserts the invariants that hold after every step.
func (w *world) check() {
	w.t.Helper()
	recs := w.p.Records()
	assigned := map[netip.Addr]bool{}
	for _, r := range recs {
		if r.State == checkpoint.Assigned {
			if assigned[r.IP] {
				w.fatalf("%s assigned twice: %+v", r.IP, recs)
			}
			assigned[r.IP] = true
		}
	}
	if len(assigned) > w.cfg.Limits.Pods() {
		w.fatalf("%d assigned, the limit is %d", len(assigned), w.cfg.Limits.Pods())
	}
	for k, ip := range w.pods {
		r, ok := w.p.Lookup(k.containerID, k.ifName)
		if !ok || r.IP != ip || (r.State == checkpoint.Quarantined) != w.broken[k] {
			w.fatalf("pod %s holds %s but the pool says %+v %v", k.containerID, ip, r, ok)
		}
	}
	s := w.p.Stats()
	if s.Assigned != len(assigned) || s.Assigned > len(w.pods) || s.ENIs != len(w.cloud) {
		w.fatalf("stats %+v, %d assigned records, %d pods, %d ENIs", s, len(assigned), len(w.pods), len(w.cloud))
	}
	// The records round-trip through New: a restart right now would start from the same state.
	p2, err := New(w.cfg, w.clk, &fakeCP{}, recs)
	if err != nil {
		w.fatalf("New from Records: %v", err)
	}
	p2.SetENIs(w.view())
	if again := p2.Records(); !reflect.DeepEqual(again, recs) {
		w.fatalf("Records do not round-trip:\n%+v\n%+v", recs, again)
	}
	s2 := p2.Stats()
	if s2.Assigned != s.Assigned || s2.Cooldown != s.Cooldown || s2.Quarantined != s.Quarantined || s2.Reserved != s.Reserved || s2.Idle != s.Idle+s.Releasing {
		w.fatalf("stats after a round trip %+v, before %+v", s2, s)
	}
	if _, f := w.cp.saved(); f != nil && f.Instance != w.cfg.Instance {
		w.fatalf("saved for instance %q", f.Instance)
	}
}

// step runs one operation chosen by b.
func (w *world) step(b byte) {
	arg := int(b / 12)
	switch b % 12 {
	case 0, 1, 2:
		w.add(arg % 16)
	case 3, 4:
		w.del(arg % 16)
	case 5:
		w.plan()
	case 6:
		w.setUp()
	case 7:
		w.clk.Advance(time.Duration(arg) * 5 * time.Second)
	case 8:
		w.failSaves = !w.failSaves
	case 9:
		if arg%2 == 0 {
			w.lose(arg / 2)
		} else {
			w.quarantine(arg / 2)
		}
	case 10:
		w.restart()
	case 11:
		if arg%3 == 0 {
			w.settle()
		} else {
			w.p.SetDegraded(arg%3 == 1, "test")
		}
	}
	w.check()
}

func simConfig() Config {
	return Config{MinIdle: 1, TargetIdle: 2, MaxIdle: 4, Cooldown: 30 * time.Second, IdleReclaimAfter: time.Minute,
		ReclaimBatch: 2, ReclaimJitter: 0.5, Limits: Limits{InstanceType: "ecs.t6-c1m2.large", ENIs: 3, AddrsPerENI: 4}, Instance: "i-sim"}
}

func simReserveConfig() Config {
	c := simConfig()
	c.ReserveTTL = 2 * time.Minute
	return c
}

// TestSimulation drives the pool through random ADD/DEL sequences with a cloud that does what Plan asks.
func TestSimulation(t *testing.T) {
	big := testConfig()
	big.IdleReclaimAfter = 2 * time.Minute
	for _, tc := range []struct {
		name         string
		cfg          Config
		seeds, steps int
	}{{"small node", simConfig(), 8, 1500}, {"c7.4xlarge", big, 2, 1000}, {"small node, fixed addresses", simReserveConfig(), 8, 1500}} {
		for seed := range uint64(tc.seeds) {
			t.Run(fmt.Sprintf("%s/%d", tc.name, seed), func(t *testing.T) {
				w := newWorld(t, tc.cfg, seed)
				pods := 16
				if tc.cfg.Limits.Pods() > 100 {
					pods = 240
				}
				for range tc.steps {
					switch r := w.rnd.IntN(100); {
					case r < 35:
						w.add(w.rnd.IntN(pods))
					case r < 60:
						w.del(w.rnd.IntN(pods))
					case r < 80:
						w.plan()
					case r < 87:
						w.setUp()
					case r < 94:
						w.clk.Advance(time.Duration(w.rnd.IntN(90)) * time.Second)
					case r < 96:
						w.lose(w.rnd.IntN(1000))
					case r < 97:
						w.restart()
					case r < 98:
						w.failSaves = !w.failSaves
					default:
						w.settle()
					}
					w.check()
				}
				w.failSaves = false
				w.settle()
			})
		}
	}
}

func FuzzPool(f *testing.F) {
	for _, seed := range [][]byte{
		{5, 6, 0, 12, 24, 36, 48, 3, 15, 5, 6},                    // grow, add four, delete two
		{5, 6, 0, 3, 0, 7 + 12*6, 0},                              // release and reuse after the cooldown
		{5, 6, 0, 12, 24, 36, 48, 60, 72, 84, 96, 108, 120, 5, 6}, // up to the limit
		{5, 6, 0, 9, 10, 3, 5, 6},                                 // lose an address, restart, DEL
		{5, 6, 0, 8, 0, 12, 8, 3, 10, 11},                         // failing saves, settle
		{5, 6, 7 + 12*20, 5, 11 + 12, 7 + 12*20, 5, 11 + 24, 5},   // degraded, reclaim
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 400 {
			ops = ops[:400]
		}
		cfg := simConfig()
		if len(ops)%2 == 1 {
			cfg = simReserveConfig()
		}
		w := newWorld(t, cfg, uint64(len(ops)))
		for _, b := range ops {
			w.step(b)
		}
		w.failSaves = false
		w.settle()
	})
}
