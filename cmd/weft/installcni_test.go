package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/cni/install"
)

// weft install-cni installs flannel's conflist by default and the eni backend's with --backend eni.
func TestInstallCNIBackends(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for _, n := range []string{"flannel", "weft-eni"} {
		_ = os.MkdirAll(src, 0o755)
		if err := os.WriteFile(filepath.Join(src, n), []byte("#!/bin/true\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin, confDir := filepath.Join(dir, "bin"), filepath.Join(dir, "net.d")
	common := []string{"--cni-bin-dir", bin, "--cni-conf-dir", confDir}
	if err := installCNI(context.Background(), append(common, "--plugins", filepath.Join(src, "flannel"))); err != nil {
		t.Fatalf("default: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(confDir, "10-flannel.conflist"))
	if err != nil || string(got) != string(install.DefaultConflist) {
		t.Errorf("default conflist %s %v", got, err)
	}
	if err := os.Remove(filepath.Join(confDir, "10-flannel.conflist")); err != nil {
		t.Fatal(err)
	}
	if err := installCNI(context.Background(), append(common, "--backend", "eni", "--plugins", filepath.Join(src, "weft-eni"))); err != nil {
		t.Fatalf("--backend eni: %v", err)
	}
	got, err = os.ReadFile(filepath.Join(confDir, "10-weft-eni.conflist"))
	if err != nil || string(got) != string(install.ENIConflist) || !strings.Contains(string(got), `"type": "weft-eni"`) {
		t.Errorf("eni conflist %s %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(bin, "weft-eni")); err != nil {
		t.Errorf("weft-eni not installed: %v", err)
	}
	if ents, _ := os.ReadDir(confDir); len(ents) != 1 {
		t.Errorf("conf dir holds %v, want only the eni conflist", ents)
	}
	// An explicit --conf-name and an empty --plugins are honoured.
	if err := installCNI(context.Background(), append(common, "--backend", "eni", "--plugins=", "--conf-name", "20-eni.conflist")); err != nil {
		t.Fatalf("--conf-name: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(confDir, "20-eni.conflist")); err != nil || string(got) != string(install.ENIConflist) {
		t.Errorf("--conf-name: %s %v", got, err)
	}
	if err := installCNI(context.Background(), append(common, "--backend", "host-gw")); err == nil || !strings.Contains(err.Error(), "--backend") {
		t.Errorf("unknown backend: %v", err)
	}
}
