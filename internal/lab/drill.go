package lab

import (
	"fmt"
	"syscall"
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
