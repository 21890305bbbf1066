package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/lab"
)

// Leader handover drills: the route controller's leader is read from the election record itself (never from a
// log line), killed with SIGKILL (no resignation: the record must expire), and a different node must take over,
// repair the table, and never have written to it while the old leader still did (alisim's write audit names
// the instance whose RAM-role credentials signed each write).

const vpcTable = "vtb-alisim0001"

// instanceOf is the alisim instance a vpcEnv node runs on.
func instanceOf(n *lab.Node) string { return fmt.Sprintf("i-alisim%04d", n.Index) }

// etcdLeader is the identity ("<instance>/<node>") of the ali-vpc election's leader: of the candidates' keys
// under the election prefix, the one created first.
func (e *vpcEnv) etcdLeader() (string, error) {
	out, err := e.lab.Etcdctl("get", "--prefix", "/coreos.com/network/elections/ali-vpc-routes/", "--sort-by=CREATE",
		"--order=ASCEND", "--limit=1", "--print-value-only")
	if err != nil {
		return "", fmt.Errorf("etcdctl get elections: %v: %s", err, out)
	}
	return strings.TrimSpace(out), nil
}

// kubeLeader is the holderIdentity of the election Lease.
func kubeLeader(k *lab.Kube) (string, error) {
	l, err := k.Client.CoordinationV1().Leases("kube-flannel").Get(context.Background(), "weft-ali-vpc-routes", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if l.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *l.Spec.HolderIdentity, nil
}

// nodeByIdentity finds the node an election identity names by its instance.
func (e *vpcEnv) nodeByIdentity(id string) *lab.Node {
	inst, _, _ := strings.Cut(id, "/")
	for _, n := range e.nodes {
		if instanceOf(n) == inst {
			return n
		}
	}
	return nil
}

// writeSpan is the first and last write one instance made, and how many.
type writeSpan struct {
	First, Last time.Time
	N           int
}

// writeSpans groups the audit's writes by the instance whose credentials made them; writes with a long-term
// key (the test's own, an operator's) have no instance and are left out.
func writeSpans(ws []sim.Write) map[string]writeSpan {
	out := map[string]writeSpan{}
	for _, w := range ws {
		if w.Instance == "" {
			continue
		}
		s, ok := out[w.Instance]
		if !ok || w.At.Before(s.First) {
			s.First = w.At
		}
		if w.At.After(s.Last) {
			s.Last = w.At
		}
		s.N++
		out[w.Instance] = s
	}
	return out
}

// overlaps names every pair of instances whose write windows overlap: two writers at once.
func overlaps(spans map[string]writeSpan) []string {
	var ids []string
	for id := range spans {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []string
	for i, a := range ids {
		for _, b := range ids[i+1:] {
			sa, sb := spans[a], spans[b]
			if !sa.Last.Before(sb.First) && !sb.Last.Before(sa.First) {
				out = append(out, fmt.Sprintf("%s wrote %s..%s (%d) and %s wrote %s..%s (%d)", a, sa.First.Format("15:04:05.000"),
					sa.Last.Format("15:04:05.000"), sa.N, b, sb.First.Format("15:04:05.000"), sb.Last.Format("15:04:05.000"), sb.N))
			}
		}
	}
	return out
}

// repair deletes the entry of one of the nodes by hand (round picks which) and waits until it is back,
// returning how long that took. Only a leader repairs; with two leaders, rounds one resync apart are won by both.
func (e *vpcEnv) repair(t *testing.T, nodes []*lab.Node, round int) time.Duration {
	t.Helper()
	n := nodes[round%len(nodes)]
	var victim sim.RouteEntry
	for _, x := range e.world.CustomEntries(vpcTable) {
		if x.NextHopID == instanceOf(n) && x.DeleteAt.IsZero() {
			victim = x
		}
	}
	if victim.ID == "" {
		t.Fatalf("no entry of %s: %v", instanceOf(n), e.entries())
	}
	if err := e.world.DeleteEntry(vpcTable, victim.ID); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	if err := lab.WaitFor(60*time.Second, "the deleted entry restored", func() (bool, error) {
		k := 0
		for _, x := range e.world.CustomEntries(vpcTable) {
			if x.Dst == victim.Dst && x.NextHopID == victim.NextHopID && x.DeleteAt.IsZero() {
				k++
			}
		}
		return k == 1, nil
	}); err != nil {
		t.Fatalf("%v: %s via %s; entries %v", err, victim.Dst, victim.NextHopID, e.entries())
	}
	return time.Since(deleted)
}

const repairRounds = 4

// handover runs the drill once the cluster is converged: leader() reads the election record. Entries deleted
// by hand are repaired by the leader alone; then it is killed, a different identity must appear in the record,
// and the new leader alone repairs the next deletions. The write audit must show one writer at a time.
func (e *vpcEnv) handover(t *testing.T, leader func() (string, error), wantEntries int) {
	t.Helper()
	old, err := leader()
	if err != nil || old == "" {
		t.Fatalf("no leader in the election record: %q %v", old, err)
	}
	oldNode := e.nodeByIdentity(old)
	if oldNode == nil {
		t.Fatalf("the election record names %q, no node of this cluster", old)
	}
	oldInst := instanceOf(oldNode)
	if got := len(e.world.CustomEntries(vpcTable)); got != wantEntries {
		t.Fatalf("%d entries before the handover, want %d: %v", got, wantEntries, e.entries())
	}
	for r := 0; r < repairRounds; r++ {
		e.repair(t, e.nodes, r)
	}
	if now, err := leader(); err != nil || now != old {
		t.Fatalf("the leader changed from %q to %q (%v) with every node up", old, now, err)
	}
	before, _ := e.world.Writes()
	for inst, s := range writeSpans(before) {
		if inst != oldInst {
			t.Errorf("%s wrote to the table while %s led: %+v", inst, old, s)
		}
	}
	killed := time.Now()
	oldNode.Daemon.Kill()
	var cur string
	if err := lab.WaitFor(60*time.Second, "another node in the election record", func() (bool, error) {
		cur, err = leader()
		return err == nil && cur != "" && cur != old, err
	}); err != nil {
		t.Fatalf("%v (record %q, was %q)", err, cur, old)
	}
	takeover := time.Since(killed)
	newNode := e.nodeByIdentity(cur)
	if newNode == nil || newNode == oldNode || newNode.Daemon.Exited() {
		t.Fatalf("the record names %q after %s was killed: not a live other node", cur, old)
	}
	newInst := instanceOf(newNode)
	t.Logf("handover: %s killed, %s leads after %s", old, cur, takeover.Round(time.Millisecond))
	var survivors []*lab.Node
	for _, n := range e.nodes {
		if n != oldNode {
			survivors = append(survivors, n)
		}
	}
	var took []string
	for r := 0; r < repairRounds; r++ {
		took = append(took, e.repair(t, survivors, r).Round(time.Millisecond).String())
	}
	t.Logf("handover: the new leader repaired hand-deleted entries after %s", strings.Join(took, ", "))
	if got := len(e.world.CustomEntries(vpcTable)); got != wantEntries {
		t.Errorf("%d entries after the repairs, want %d: %v", got, wantEntries, e.entries())
	}

	ws, dropped := e.world.Writes()
	if dropped > 0 {
		t.Fatalf("the write audit dropped %d records", dropped)
	}
	spans := writeSpans(ws)
	so, sn := spans[oldInst], spans[newInst]
	switch {
	case so.N == 0:
		t.Errorf("no write by the old leader %s in the audit: %v", oldInst, spans)
	case sn.N == 0:
		t.Errorf("no write by the new leader %s in the audit: %v", newInst, spans)
	case !so.Last.Before(sn.First):
		t.Errorf("the old leader %s wrote until %s, the new leader %s from %s: two writers in the same window", oldInst,
			so.Last.Format("15:04:05.000"), newInst, sn.First.Format("15:04:05.000"))
	case sn.First.Before(killed):
		t.Errorf("the new leader %s wrote at %s, before the old leader was killed at %s", newInst, sn.First.Format("15:04:05.000"),
			killed.Format("15:04:05.000"))
	}
	for _, o := range overlaps(spans) {
		t.Errorf("two writers at once: %s", o)
	}
	for inst := range spans {
		if inst != oldInst && inst != newInst {
			t.Errorf("%s, never the leader, wrote to the table: %+v", inst, spans[inst])
		}
	}
}

func TestAliVPCHandoverEtcd(t *testing.T) {
	e := newVPCEnv(t, 3, 200)
	for i, n := range e.nodes {
		e.start(n, 10370+i)
	}
	for i, n := range e.nodes {
		if err := lab.WaitFor(40*time.Second, n.Name+" ready", func() (bool, error) {
			code, _ := readyz(n, 10370+i)
			return code == 200, nil
		}); err != nil {
			t.Fatalf("%v; entries %v", err, e.entries())
		}
	}
	e.handover(t, e.etcdLeader, 3)
}

func TestAliVPCHandoverKube(t *testing.T) {
	e := newVPCEnv(t, 3, 200)
	k, saConfig := e.startAPIServer()
	e.startKubeNodes(k, saConfig, fmt.Sprintf(vpcConf, 200), 10380)
	for i, n := range e.nodes {
		if err := lab.WaitFor(60*time.Second, n.Name+" ready", func() (bool, error) {
			code, _ := readyz(n, 10380+i)
			return code == 200, nil
		}); err != nil {
			t.Fatalf("%v; entries %v", err, e.entries())
		}
	}
	e.handover(t, func() (string, error) { return kubeLeader(k) }, 3)
}
