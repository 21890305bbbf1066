package testenv

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// StartEtcd starts a real etcd on free loopback ports with a fresh data directory and returns its client URL.
// It is stopped when the test ends.
func StartEtcd(t testing.TB) string {
	t.Helper()
	return StartEtcdOn(t, "127.0.0.1")
}

// StartEtcdOn is StartEtcd listening on host (which must be an address of the current network namespace).
func StartEtcdOn(t testing.TB, host string) string {
	t.Helper()
	bin := Bin(t, "etcd")
	client, peer := freePort(t, host), freePort(t, host)
	curl := fmt.Sprintf("http://%s", net.JoinHostPort(host, fmt.Sprint(client)))
	purl := fmt.Sprintf("http://%s", net.JoinHostPort(host, fmt.Sprint(peer)))
	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--name", "test", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", curl, "--advertise-client-urls", curl,
		"--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
		"--initial-cluster", "test="+purl, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(curl + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return curl
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(logf.Name())
	t.Fatalf("etcd at %s did not become healthy; log:\n%s", curl, b)
	return ""
}

func freePort(t testing.TB, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
