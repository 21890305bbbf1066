package lab

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"time"
)

// PID is the pid of the lab's live process named name ("etcd", "kube-apiserver", "weftd"), the one started
// last when it was restarted; 0 when none runs.
func (l *Lab) PID(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.procs) - 1; i >= 0; i-- {
		if p := l.procs[i]; p.Name == name && !p.Exited() {
			return p.Cmd.Process.Pid
		}
	}
	return 0
}

// Signal sends sig to the lab's live process named name (SIGSTOP / SIGCONT freeze and thaw a service, SIGKILL
// crashes it).
func (l *Lab) Signal(name string, sig syscall.Signal) error {
	pid := l.PID(name)
	if pid == 0 {
		return fmt.Errorf("no running %s in the lab", name)
	}
	return syscall.Kill(pid, sig)
}

// PingRun is a ping running in a pod until stopped, for measuring loss across a fault.
type PingRun struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan error
}

// StartPing pings ip from the pod every interval (at least 200 ms, ping's limit for root without flood) until
// Stop.
func (p *Pod) StartPing(ip string, interval time.Duration) (*PingRun, error) {
	r := &PingRun{done: make(chan error, 1)}
	r.cmd = exec.Command("ip", "netns", "exec", p.Name, "ping", "-n", "-W", "1",
		"-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64), ip)
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ping in %s: %w", p.Name, err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	return r, nil
}

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// Stop interrupts the ping (which then prints its summary) and returns how many echo requests it sent and how
// many replies came back.
func (r *PingRun) Stop() (sent, received int, err error) {
	_ = r.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	m := pingSummary.FindStringSubmatch(r.out.String())
	if m == nil {
		return 0, 0, errors.New("ping printed no summary: " + tail(r.out.String()))
	}
	sent, _ = strconv.Atoi(m[1])
	received, _ = strconv.Atoi(m[2])
	return sent, received, nil
}
