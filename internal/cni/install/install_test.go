package install

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	enip "github.com/weftnet/weft/internal/eni/plugin"
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

// A --conf-name with a path in it used to write outside the configuration directory.
func TestConfNameStaysInConfDir(t *testing.T) {
	dir := t.TempDir()
	confDir := filepath.Join(dir, "a", "net.d")
	for _, name := range []string{"../../x", "../x.conflist", "sub/x.conflist", "..", ".", `..\x`} {
		err := Run(Options{ConfDir: confDir, ConfName: name})
		if err == nil || !strings.Contains(err.Error(), "--conf-name") {
			t.Errorf("--conf-name %q: %v, want an error naming --conf-name", name, err)
		}
	}
	var written []string
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, _ error) error {
		if fi != nil && !fi.IsDir() {
			written = append(written, p)
		}
		return nil
	})
	if len(written) != 0 {
		t.Errorf("files written: %v", written)
	}
}

// Only a CNI conflist is installed: a name, a cniVersion and a non-empty list of plugin objects with a type.
func TestConflistChecked(t *testing.T) {
	for _, c := range []struct{ conf, want string }{
		{`{"name":"cbr0","cniVersion":"1.0.0","plugins":{"type":"flannel"}}`, "plugins"},
		{`{"name":"cbr0","cniVersion":"1.0.0","plugins":"flannel"}`, "plugins"},
		{`{"name":"cbr0","cniVersion":"1.0.0","plugins":[]}`, "plugins"},
		{`{"name":"cbr0","cniVersion":"1.0.0","plugins":["flannel"]}`, "plugins[0]"},
		{`{"name":"cbr0","cniVersion":"1.0.0","plugins":[{"type":"flannel"},{"delegate":{}}]}`, "plugins[1]"},
		{`{"cniVersion":"1.0.0","plugins":[{"type":"flannel"}]}`, `"name"`},
		{`{"name":"cbr0","cniVersion":1,"plugins":[{"type":"flannel"}]}`, "cniVersion"},
		{`[1]`, "object"},
		{`{`, "JSON"},
	} {
		dir := t.TempDir()
		err := Run(Options{ConfDir: dir, Conflist: []byte(c.conf)})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %s", c.conf, err, c.want)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%s: installed", c.conf)
		}
	}
	if err := CheckConflist(DefaultConflist); err != nil {
		t.Errorf("the default conflist refused: %v", err)
	}
}

// Each backend's defaults.
func TestForBackend(t *testing.T) {
	for _, name := range []string{"", "flannel"} {
		b, err := ForBackend(name)
		if err != nil || b.ConfName != "10-flannel.conflist" || string(b.Conflist) != string(DefaultConflist) ||
			len(b.Plugins) != 1 || b.Plugins[0] != "/opt/bin/flannel" {
			t.Errorf("ForBackend(%q) = %+v, %v", name, b, err)
		}
	}
	b, err := ForBackend("eni")
	if err != nil || b.ConfName != "10-weft-eni.conflist" || len(b.Plugins) != 1 || b.Plugins[0] != "/opt/bin/weft-eni" {
		t.Errorf("ForBackend(eni) = %+v, %v", b, err)
	}
	if _, err := ForBackend("vxlan"); err == nil || !strings.Contains(err.Error(), "--backend") || !strings.Contains(err.Error(), "eni") {
		t.Errorf("unknown backend: %v", err)
	}
}

// The eni conflist installs, and its plugin configuration is one weft-eni accepts as the runtime hands it over.
func TestRunENI(t *testing.T) {
	dir := t.TempDir()
	plugin := filepath.Join(dir, "src", "weft-eni")
	_ = os.MkdirAll(filepath.Dir(plugin), 0o755)
	if err := os.WriteFile(plugin, []byte("#!/bin/true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := ForBackend("eni")
	o := Options{Plugins: []string{plugin}, BinDir: filepath.Join(dir, "bin"), ConfDir: filepath.Join(dir, "net.d"), ConfName: b.ConfName, Conflist: b.Conflist}
	if err := Run(o); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "bin", "weft-eni")); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("weft-eni not installed executable: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "net.d", "10-weft-eni.conflist"))
	if err != nil || string(got) != string(ENIConflist) {
		t.Fatalf("conflist %s %v", got, err)
	}
	var list struct {
		Name, CNIVersion string
		Plugins          []map[string]any
	}
	if err := json.Unmarshal(got, &list); err != nil || list.CNIVersion != "1.0.0" || len(list.Plugins) != 1 {
		t.Fatalf("conflist %s: %+v %v", got, list, err)
	}
	p := list.Plugins[0]
	p["name"], p["cniVersion"] = list.Name, list.CNIVersion // what libcni adds to each plugin's configuration
	conf, _ := json.Marshal(p)
	c, err := enip.LoadConf(conf)
	if err != nil || c.Type != "weft-eni" || c.Socket != "/run/weft/eni.sock" {
		t.Errorf("weft-eni refuses its conflist's configuration %s: %+v %v", conf, c, err)
	}
}

// A configuration that sorts first shadows ours; the runtime reads .conf, .conflist and .json files only.
func TestShadowing(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"10-flannel.conflist", "05-other.conf", "99-late.conflist", "00-notes.txt", "10-weft-eni.conflist", "01-x.json"} {
		os.WriteFile(filepath.Join(dir, n), []byte("{}"), 0o644)
	}
	got, err := Shadowing(dir, "10-weft-eni.conflist")
	if err != nil || strings.Join(got, " ") != "01-x.json 05-other.conf 10-flannel.conflist" {
		t.Errorf("Shadowing = %v, %v", got, err)
	}
	if got, err := Shadowing(filepath.Join(dir, "missing"), "10-weft-eni.conflist"); err != nil || len(got) != 0 {
		t.Errorf("missing directory: %v %v", got, err)
	}
}
