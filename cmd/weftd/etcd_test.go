package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to write from the process's output copier while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// An unreachable etcd with --etcd-username set is retried, not fatal (weftd used to exit 1: the etcd client
// authenticated inside its constructor); /readyz says why; no credential, neither --etcd-password nor the
// userinfo of an endpoint URL, reaches the log or /readyz; SIGTERM stops it with exit 0.
func TestUnreachableEtcdWithAuthIsRetried(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "weftd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	etcd, health := freeAddr(t), freeAddr(t)
	_, port, _ := net.SplitHostPort(health)
	cmd := exec.Command(bin, "--etcd-endpoints=http://bob:urlsecret@"+etcd, "--etcd-username=bob", "--etcd-password=flagsecret",
		"--healthz-ip=127.0.0.1", "--healthz-port="+port, "--subnet-file="+filepath.Join(t.TempDir(), "subnet.env"))
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()

	var body string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		select {
		case err := <-exited:
			t.Fatalf("weftd exited (%v) instead of retrying\n%s", err, log.String())
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://%s/readyz", health))
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if body = string(b); resp.StatusCode == 503 && strings.Contains(body, "get network config from etcd") {
			break
		}
	}
	if !strings.Contains(body, "get network config from etcd") {
		t.Fatalf("/readyz %q, want the etcd step as the reason\n%s", body, log.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("SIGTERM: %v, want exit 0\n%s", err, log.String())
	}
	for _, secret := range []string{"urlsecret", "flagsecret"} {
		if strings.Contains(body, secret) || strings.Contains(log.String(), secret) {
			t.Errorf("%s leaked: /readyz %q\n%s", secret, body, log.String())
		}
	}
}
