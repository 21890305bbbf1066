// Package testenv gives weft's tests the real third-party programs they start (etcd, kube-apiserver, the CNI
// plugins, upstream flanneld) and the privilege checks of the three test tiers.
//
// Binaries come from the directory named by WEFT_TOOLS_BIN, which `make tools` (tools/build.sh) fills and the
// Makefile exports to `go test`. A test that needs a missing binary fails with the command that builds it: in CI
// nothing is skipped.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ToolsDir returns the directory holding the third-party binaries, failing the test when it is not set up.
func ToolsDir(t testing.TB) string {
	t.Helper()
	d := os.Getenv("WEFT_TOOLS_BIN")
	if d == "" {
		t.Fatalf("WEFT_TOOLS_BIN is not set: run the tests with `make test` (or export WEFT_TOOLS_BIN=$(tools/build.sh))")
	}
	return d
}

// Bin returns the path of a third-party binary such as "etcd" or "kube-apiserver".
func Bin(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(ToolsDir(t), name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found in WEFT_TOOLS_BIN (%v): run `make tools`", name, err)
	}
	return p
}

// WeftBin returns the path of one of weft's own binaries (weftd, flannel, weft) built by `make build`,
// from WEFT_BIN (default: bin/ at the repository root).
func WeftBin(t testing.TB, name string) string {
	t.Helper()
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

// RequireRoot marks a privileged test. Without root it skips, except in CI (CI=true), where skipping would hide
// a broken tier, so it fails instead.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("this test needs root, and CI must run it")
	}
	t.Skip("needs root")
}

// LookPath returns a system program (ip, iptables, nft) or fails the test naming the package to install.
func LookPath(t testing.TB, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		t.Fatalf("%s not on PATH: run `make deps` (installs iproute2, iptables, nftables)", prog)
	}
	return p
}
