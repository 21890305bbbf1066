package e2e

// Probing the world: every ordered pair of pods (a pod and itself left out: that traffic never leaves the pod,
// so no policy applies to it), one port and protocol at a time, as real connections: TCP connects and has a line
// echoed, UDP sends a datagram and expects it back. Probes run concurrently, a denied one costs its timeout.
// A matrix is compared with what the case expects, retried whole until it matches (the engine converging after
// a change) or npWait passes; the differences are then shown as a truth table like upstream's.

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftnet/weft/internal/lab"
)

const (
	npProbeTimeout = time.Second // what a denied probe costs
	npParallel     = 16
)

// probe connects from the pod to ip:port over proto and tells whether the echo came back within the timeout.
func (p *npPod) probe(ip string, port int, proto corev1.Protocol) bool {
	network := "tcp4"
	if proto == corev1.ProtocolUDP {
		network = "udp4"
	}
	var c net.Conn
	if err := lab.InNS(p.netns, func() (err error) {
		c, err = net.DialTimeout(network, net.JoinHostPort(ip, fmt.Sprint(port)), npProbeTimeout)
		return err
	}); err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(npProbeTimeout))
	msg := "netpol " + p.String() + "\n"
	if _, err := c.Write([]byte(msg)); err != nil {
		return false
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && got == msg
}

// reach is a reachability matrix over the world's pods: cell[from][to].
type reach map[string]map[string]bool

// newReach is a matrix with every cell v.
func newReach(pods []*npPod, v bool) reach {
	r := reach{}
	for _, a := range pods {
		r[a.String()] = map[string]bool{}
		for _, b := range pods {
			if a != b {
				r[a.String()][b.String()] = v
			}
		}
	}
	return r
}

// npMatch tells whether pattern names the pod: "*" every pod, "x" a namespace, "x/a" one pod.
func npMatch(pattern, pod string) bool {
	if pattern == "*" || pattern == pod {
		return true
	}
	return !strings.Contains(pattern, "/") && strings.HasPrefix(pod, pattern+"/")
}

// npExpect sets the cells from -> to (patterns of npMatch) to Allowed.
type npExpect struct {
	From, To string
	Allowed  bool
}

func deny(from, to string) npExpect  { return npExpect{from, to, false} }
func allow(from, to string) npExpect { return npExpect{from, to, true} }

// apply sets the cells in the order given: later ones win.
func (r reach) apply(ex []npExpect) reach {
	for _, e := range ex {
		for from, row := range r {
			for to := range row {
				if npMatch(e.From, from) && npMatch(e.To, to) {
					row[to] = e.Allowed
				}
			}
		}
	}
	return r
}

// observe probes every cell.
func (w *npWorld) observe(port int, proto corev1.Protocol) reach {
	r := newReach(w.pods, false)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, npParallel)
	for _, a := range w.pods {
		for _, b := range w.pods {
			if a == b {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				ok := a.probe(b.ip, port, proto)
				mu.Lock()
				r[a.String()][b.String()] = ok
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	return r
}

// truthTable renders want against got: "." a cell that matches, "X" one that differs, "-" a pod and itself;
// then the differing cells spelled out.
func (w *npWorld) truthTable(want, got reach) string {
	var b strings.Builder
	b.WriteString("from\\to")
	for _, p := range w.pods {
		fmt.Fprintf(&b, " %s", p)
	}
	b.WriteString("\n")
	var diffs []string
	word := map[bool]string{true: "allowed", false: "denied"}
	for _, a := range w.pods {
		fmt.Fprintf(&b, "%-7s", a)
		for _, c := range w.pods {
			cell := "."
			switch {
			case a == c:
				cell = "-"
			case want[a.String()][c.String()] != got[a.String()][c.String()]:
				cell = "X"
				diffs = append(diffs, fmt.Sprintf("%s -> %s (%s, %s): want %s, got %s", a, c, a.node.Name, c.node.Name,
					word[want[a.String()][c.String()]], word[got[a.String()][c.String()]]))
			}
			fmt.Fprintf(&b, " %3s", cell)
		}
		b.WriteString("\n")
	}
	return b.String() + strings.Join(diffs, "\n")
}

func reachEqual(a, b reach) bool {
	for from, row := range a {
		for to, v := range row {
			if b[from][to] != v {
				return false
			}
		}
	}
	return true
}

// npProbe is one matrix a step checks: the port, the protocol, the cells that differ from all-allowed.
type npProbe struct {
	Port   int
	Proto  corev1.Protocol
	Expect []npExpect
}

// tcp and udp are npProbes.
func tcp(port int, ex ...npExpect) npProbe { return npProbe{port, corev1.ProtocolTCP, ex} }
func udp(port int, ex ...npExpect) npProbe { return npProbe{port, corev1.ProtocolUDP, ex} }

// check retries the whole matrix until it equals the expectation or npWait passes; it returns the truth table
// of the last attempt on failure, and how long convergence took.
func (w *npWorld) check(pr npProbe) (time.Duration, error) {
	want := newReach(w.pods, true).apply(pr.Expect)
	start := time.Now()
	for {
		got := w.observe(pr.Port, pr.Proto)
		if reachEqual(want, got) {
			return time.Since(start), nil
		}
		if time.Since(start) > npWait {
			return time.Since(start), fmt.Errorf("%s/%d: matrix did not converge within %s:\n%s", pr.Proto, pr.Port, npWait, w.truthTable(want, got))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
