// Package services starts the cluster services weft runs against, etcd and kube-apiserver, for every user: the
// tests (through internal/testenv), the end-to-end lab and `weft demo` (through internal/lab), and the dist/
// tests. One place knows their command lines, the credentials the API server trusts and how to tell each is
// ready.
//
// The caller decides how a program runs (directly, or inside a network namespace) and how this process reaches
// it, through a Launcher and a dial function; the caller also stops what it started. Nothing here depends on
// package testing, because `weft demo` uses it at run time.
package services

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// Launcher starts one program with its output appended to logPath. The caller owns the process: it stops it
// when its test, lab or demo ends.
type Launcher interface {
	Launch(logPath, prog string, args ...string) (Proc, error)
}

// Proc is a started program, as much of it as waiting for readiness needs.
type Proc interface {
	// Exited tells whether the program has ended (so waiting for it to become ready is pointless).
	Exited() bool
}

// DialFunc opens a connection from this process to a service; nil dials directly.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// poll calls ready every 100 ms until it answers true, the process exits, the context ends or timeout passes; the
// error names what was awaited, the last reason and the end of the log.
func poll(ctx context.Context, what string, timeout time.Duration, p Proc, logPath string, ready func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := ready(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if p.Exited() {
			return fmt.Errorf("%s exited before it was ready; log:\n%s", what, Tail(logPath))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s (last: %v); log:\n%s", what, timeout, last, Tail(logPath))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// httpClient is a short-timeout client dialling through dial.
func httpClient(dial DialFunc) *http.Client {
	return &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
}

// Tail returns the last 4000 bytes of a log file, for error messages.
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
