package main

// Arrival of a change in the kernel: `nft monitor` in the node namespace prints each committed change of the
// ruleset as a line; the line that proves a change (a rule with the change's port, a map element with a pod's
// address, a counter going) is timestamped when it is read. weftd is not asked anything, so it is not slowed.

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// monitor follows `nft monitor` in one namespace.
type monitor struct {
	cmd *exec.Cmd

	mu      sync.Mutex
	waiters []*waiter
	lines   int
	done    chan struct{}
}

type waiter struct {
	match func(string) bool
	at    chan time.Time
}

func startMonitor(ns string) (*monitor, error) {
	c := exec.Command("ip", "netns", "exec", ns, "nft", "monitor")
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := c.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("nft monitor: %w", err)
	}
	m := &monitor{cmd: c, done: make(chan struct{})}
	go m.read(out)
	return m, nil
}

func (m *monitor) read(r io.Reader) {
	defer close(m.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		now := time.Now()
		line := sc.Text()
		m.mu.Lock()
		m.lines++
		kept := m.waiters[:0]
		for _, w := range m.waiters {
			if w.match(line) {
				w.at <- now
				continue
			}
			kept = append(kept, w)
		}
		m.waiters = kept
		m.mu.Unlock()
	}
}

// expect registers a line to wait for; call it before making the change.
func (m *monitor) expect(match func(string) bool) *waiter {
	w := &waiter{match: match, at: make(chan time.Time, 1)}
	m.mu.Lock()
	m.waiters = append(m.waiters, w)
	m.mu.Unlock()
	return w
}

// wait returns when the line came (its time), or an error after timeout.
func (m *monitor) wait(w *waiter, timeout time.Duration, what string) (time.Time, error) {
	select {
	case t := <-w.at:
		return t, nil
	case <-m.done:
		return time.Time{}, fmt.Errorf("nft monitor ended while waiting for %s", what)
	case <-time.After(timeout):
		m.mu.Lock()
		for i, x := range m.waiters {
			if x == w {
				m.waiters = append(m.waiters[:i], m.waiters[i+1:]...)
				break
			}
		}
		m.mu.Unlock()
		return time.Time{}, fmt.Errorf("%s: not in the kernel within %s", what, timeout)
	}
}

func (m *monitor) stop() {
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
}

// The lines that prove a change (nft monitor's syntax: "add rule inet weft-policy CHAIN ... tcp dport N accept",
// "add element inet weft-policy ingress4 { ADDR : goto CHAIN }", "delete element ...", "delete counter inet
// weft-policy NAME").
func ruleWithPort(port int) func(string) bool {
	p := fmt.Sprintf("dport %d ", port)
	return func(l string) bool {
		return strings.HasPrefix(l, "add rule inet weft-policy ") && strings.Contains(l, p)
	}
}

func ingressElement(op, ip string) func(string) bool {
	prefix := op + " element inet weft-policy ingress4 "
	return func(l string) bool {
		return strings.HasPrefix(l, prefix) && (strings.Contains(l, "{ "+ip+" ") || strings.Contains(l, ", "+ip+" "))
	}
}

func counterGone(name string) func(string) bool {
	l0 := "delete counter inet weft-policy " + name
	return func(l string) bool { return l == l0 || strings.HasPrefix(l, l0+" ") }
}
