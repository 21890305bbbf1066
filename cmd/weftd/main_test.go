package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Unusable input exits 1 with an error naming the flag, before anything is contacted (the README's promise; a
// bad flag used to exit 2, and these values used to be accepted and then retried for ever).
func TestBadInputExits1(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "weftd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, c := range []struct{ arg, want string }{
		{"--no-such-flag", "no-such-flag"},
		{"--healthz-port=x", "healthz-port"},
		{"--public-ip=1.2.3", "--public-ip"},
		{"--iface-regex=([", "--iface-regex"},
		{"--etcd-endpoints=127.0.0.1:2379", "--etcd-endpoints"},
	} {
		out, err := exec.Command(bin, c.arg).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), c.want) {
			t.Errorf("%s: %v, want exit 1 naming %s\n%s", c.arg, err, c.want, out)
		}
	}
	// Kubernetes mode: the net-conf.json is checked before the API server is contacted.
	nc := filepath.Join(t.TempDir(), "net-conf.json")
	if err := os.WriteFile(nc, []byte(`{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--kube-subnet-mgr", "--net-config-path="+nc, "--kube-api-url=http://127.0.0.1:1").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), `Backend.Type "udp"`) {
		t.Errorf("unknown backend in kube mode: %v, want exit 1 naming Backend.Type\n%s", err, out)
	}
	if out, err := exec.Command(bin, "-h").CombinedOutput(); err != nil || !strings.Contains(string(out), "-etcd-endpoints") {
		t.Errorf("-h: %v, want the usage and exit 0\n%s", err, out)
	}
}
