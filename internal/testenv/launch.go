package testenv

import (
	"os"
	"os/exec"
	"testing"

	"github.com/weftnet/weft/internal/services"
)

// launcher runs the services' programs directly, in the test's own network namespace, and kills them when the
// test ends.
type launcher struct{ t testing.TB }

func (l launcher) Launch(logPath, prog string, args ...string) (services.Proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(prog, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &proc{done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	l.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p, nil
}

type proc struct{ done chan struct{} }

func (p *proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
