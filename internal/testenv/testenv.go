// Package testenv gives weft's tests the real programs they start (etcd, kube-apiserver, the CNI plugins,
// upstream flanneld, weft's own binaries) and the guards of the three test tiers.
//
// The tiers mean what they say. Under -short (`make test-unit`) every integration test (one that starts a
// program or needs the network) and every privileged test (one that needs root) skips, so the unit tier passes as
// any user with nothing but Go installed. Without -short (`make test`, CI) nothing skips: a test whose binaries,
// system programs or root are missing fails, naming the command that provides them. A test joins its tier
// through these helpers (Integration, RequireRoot, ToolsDir, Bin, WeftBin, LookPath, StartEtcd, StartAPIServer,
// NewNetns), never by checking for itself.
//
// Third-party binaries come from the directory named by WEFT_TOOLS_BIN, which `make tools` (tools/build.sh) fills
// and the Makefile exports to `go test`.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Integration marks a test that starts programs or reaches the network: it skips under -short and runs otherwise.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test (starts programs): not part of the unit tier (-short)")
	}
}

// RequireRoot marks a privileged test: it skips under -short; otherwise it fails without root, so that a full run
// (`make test`, CI) never passes by leaving a tier out.
func RequireRoot(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("privileged test (needs root): not part of the unit tier (-short)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: run `make test` as root, or `make test-unit` (go test -short) for the unit tier")
	}
}

// ToolsDir returns the directory holding the third-party binaries (an integration test's guard).
func ToolsDir(t testing.TB) string {
	t.Helper()
	Integration(t)
	d := os.Getenv("WEFT_TOOLS_BIN")
	if d == "" {
		t.Fatalf("WEFT_TOOLS_BIN is not set: run the tests with `make test` (or export WEFT_TOOLS_BIN=$(tools/build.sh)), or only the unit tier with `make test-unit`")
	}
	return d
}

// Bin returns the path of a third-party binary such as "etcd" or "kube-apiserver" (an integration test's guard).
func Bin(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(ToolsDir(t), name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found in WEFT_TOOLS_BIN (%v): run `make tools`", name, err)
	}
	return p
}

// WeftBin returns the path of one of weft's own binaries (weftd, flannel, weft) built by `make build`, from
// WEFT_BIN (default: bin/ at the repository root). Tests that run them are integration tests.
func WeftBin(t testing.TB, name string) string {
	t.Helper()
	Integration(t)
	d := os.Getenv("WEFT_BIN")
	if d == "" {
		root, err := RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		d = filepath.Join(root, "bin")
	}
	p := filepath.Join(d, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found (%v): run `make build`", p, err)
	}
	return p
}

// RepoRoot finds the repository root (the directory holding go.mod) from the working directory upwards.
func RepoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "tools")); err == nil {
				return d, nil
			}
		}
		p := filepath.Dir(d)
		if p == d {
			return "", os.ErrNotExist
		}
		d = p
	}
}

// LookPath returns a system program that `make deps` installs (ip, iptables, nft, systemd-analyze); tests that
// run one are integration tests, and a missing one fails the test.
func LookPath(t testing.TB, prog string) string {
	t.Helper()
	Integration(t)
	p, err := exec.LookPath(prog)
	if err != nil {
		t.Fatalf("%s not on PATH: run `make deps`, which installs it", prog)
	}
	return p
}
