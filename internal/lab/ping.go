package lab

import (
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// PingRun is a ping running from a pod until stopped, to measure the loss across a change made meanwhile (a
// daemon swapped, a store stopped). Counting ping's own summary keeps the measure independent of the test's
// timing.
type PingRun struct {
	Target string
	start  time.Time
	cmd    *exec.Cmd
	out    syncBuffer
	done   chan struct{}
}

// PingStats is ping's summary line, and how long the run lasted by the test's clock.
type PingStats struct {
	Sent, Received int
	Elapsed        time.Duration
}

// Lost is the number of echo requests without a reply.
func (s PingStats) Lost() int { return s.Sent - s.Received }

func (s PingStats) String() string {
	if s.Elapsed > 0 {
		return fmt.Sprintf("%d lost of %d sent in %.1fs", s.Lost(), s.Sent, s.Elapsed.Seconds())
	}
	return fmt.Sprintf("%d lost of %d sent", s.Lost(), s.Sent)
}

// StartPing starts `ping -i interval ip` in the pod; it runs until Stop.
func (p *Pod) StartPing(ip string, interval time.Duration) (*PingRun, error) {
	// ip netns exec execs ping in place, so the signal Stop sends reaches ping itself.
	cmd := exec.Command("ip", "netns", "exec", p.Name, "ping", "-n", "-W", "1",
		"-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64), ip)
	r := &PingRun{Target: ip, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &r.out, &r.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ping %s from %s: %w", ip, p.Name, err)
	}
	r.start = time.Now()
	go func() { _ = cmd.Wait(); close(r.done) }()
	return r, nil
}

// Stop interrupts ping (SIGINT makes it print its summary) and returns the summary.
func (r *PingRun) Stop() (PingStats, error) {
	_ = r.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	s, err := ParsePingSummary(r.out.String())
	s.Elapsed = time.Since(r.start)
	return s, err
}

var pingSummary = regexp.MustCompile(`(?m)^(\d+) packets transmitted, (\d+) (?:packets )?received`)

// ParsePingSummary reads the "N packets transmitted, M received" line of iputils' (or busybox's) ping.
func ParsePingSummary(out string) (PingStats, error) {
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		return PingStats{}, fmt.Errorf("ping summary: no \"N packets transmitted, M received\" line in %q", tail(out))
	}
	sent, _ := strconv.Atoi(m[1])
	recv, _ := strconv.Atoi(m[2])
	if recv > sent {
		return PingStats{}, fmt.Errorf("ping summary: %d received of %d sent", recv, sent)
	}
	return PingStats{Sent: sent, Received: recv}, nil
}

// syncBuffer is a bytes.Buffer safe for the writer (the process) and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
