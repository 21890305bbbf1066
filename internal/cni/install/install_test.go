package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	plugin := filepath.Join(dir, "src", "flannel")
	_ = os.MkdirAll(filepath.Dir(plugin), 0o755)
	if err := os.WriteFile(plugin, []byte("#!/bin/true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := Options{Plugins: []string{plugin}, BinDir: filepath.Join(dir, "bin"), ConfDir: filepath.Join(dir, "net.d")}
	if err := Run(o); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "bin", "flannel"))
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("plugin not installed executable: %v %v", st, err)
	}
	conf := filepath.Join(dir, "net.d", "10-flannel.conflist")
	got, err := os.ReadFile(conf)
	if err != nil || string(got) != string(DefaultConflist) || !strings.Contains(string(got), `"type": "flannel"`) {
		t.Fatalf("conflist %s %v", got, err)
	}
	// Unchanged content is not rewritten.
	before, _ := os.Stat(conf)
	if err := Run(o); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(conf)
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("identical conflist rewritten")
	}
	o.Conflist = []byte(`{"name":"x"}`)
	if err := Run(o); err == nil || !strings.Contains(err.Error(), "plugins") {
		t.Errorf("conflist without plugins accepted: %v", err)
	}
	o.Conflist, o.Plugins = nil, []string{filepath.Join(dir, "missing")}
	if err := Run(o); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing plugin error %v does not name it", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*", ".*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
