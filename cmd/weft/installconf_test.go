package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Called as /opt/bin/install-conf (a link to weft in the image), weft does what upstream's install-conf does,
// so kube-flannel.yml's install-cni init container works unchanged.
func TestInstallConfByName(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "weft")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	link := filepath.Join(dir, "install-conf")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "cni-conf.json")
	if err := os.WriteFile(src, []byte(`{"name":"cbr0","cniVersion":"0.3.1","plugins":[{"type":"flannel"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "etc", "cni", "net.d", "10-flannel.conflist")
	if out, err := exec.Command(link, src, dst).CombinedOutput(); err != nil {
		t.Fatalf("install-conf: %v\n%s", err, out)
	}
	got, err := os.ReadFile(dst)
	want, _ := os.ReadFile(src)
	if err != nil || string(got) != string(want) {
		t.Fatalf("installed %q (%v), want %q", got, err, want)
	}
	entries, _ := os.ReadDir(filepath.Dir(dst))
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
	for _, args := range [][]string{{src}, {filepath.Join(dir, "missing"), dst}} {
		if err := exec.Command(link, args...).Run(); err == nil {
			t.Errorf("install-conf %v succeeded", args)
		}
	}
}
