package dist_test

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/daemon"
	"github.com/weftnet/weft/internal/testenv"
)

// TestSystemdUnit checks dist/systemd: the unit has what etcd mode needs, and every FLANNELD_* name in the
// environment file, also the commented examples, is a weftd flag whose value weftd accepts.
func TestSystemdUnit(t *testing.T) {
	dir := filepath.Join(distDir(t), "systemd")
	unit, err := os.ReadFile(filepath.Join(dir, "weftd.service"))
	if err != nil {
		t.Fatal(err)
	}
	keys := parseUnit(t, string(unit))
	want := map[string]string{
		"Service.Type":            "simple", // weftd does not speak sd_notify
		"Service.ExecStart":       "/usr/local/bin/weftd",
		"Service.Restart":         "on-failure",
		"Service.EnvironmentFile": "/etc/weft/weftd.env",
		"Install.WantedBy":        "multi-user.target",
	}
	for k, v := range want {
		if got := keys[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s=%v, want %s", k, got, v)
		}
	}
	after := strings.Join(keys["Unit.After"], " ")
	for _, u := range []string{"network-online.target", "etcd.service"} {
		if !slices.Contains(strings.Fields(after), u) {
			t.Errorf("After=%s lacks %s", after, u)
		}
	}
	if !strings.Contains(string(unit), "/run/flannel/subnet.env") {
		t.Error("the unit's comment should say where subnet.env lands")
	}

	// The environment file through weftd's own flag set and environment rules.
	envFile, err := os.ReadFile(filepath.Join(dir, "weftd.env"))
	if err != nil {
		t.Fatal(err)
	}
	o := &daemon.Options{}
	fs := flag.NewFlagSet("weftd", flag.ContinueOnError)
	o.AddFlags(fs)
	names := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { names[daemon.EnvName(f.Name)] = true })
	env := map[string]string{}
	line := regexp.MustCompile(`^(#?)([A-Z][A-Z0-9_]*)=(.*)$`)
	for i, l := range strings.Split(string(envFile), "\n") {
		mm := line.FindStringSubmatch(strings.TrimSpace(l))
		if mm == nil {
			if s := strings.TrimSpace(l); s != "" && !strings.HasPrefix(s, "#") {
				t.Errorf("weftd.env:%d: %q is not NAME=value", i+1, l)
			}
			continue
		}
		if !names[mm[2]] {
			t.Errorf("weftd.env:%d: %s is not a weftd flag's variable", i+1, mm[2])
		}
		if mm[1] == "" {
			if strings.ContainsAny(mm[3], `"' `) {
				t.Errorf("weftd.env:%d: keep values unquoted and without spaces (systemd and shells read them differently)", i+1)
			}
			env[mm[2]] = mm[3]
		}
	}
	for _, k := range []string{"FLANNELD_ETCD_ENDPOINTS", "FLANNELD_ETCD_PREFIX", "FLANNELD_IFACE", "FLANNELD_IP_MASQ"} {
		if env[k] == "" {
			t.Errorf("weftd.env does not set %s", k)
		}
	}
	if err := o.ApplyEnv(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatalf("weftd.env: %v", err)
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("weftd.env: %v", err)
	}
	if o.KubeSubnetMgr || !o.IPMasq || o.SubnetFile != "/run/flannel/subnet.env" {
		t.Errorf("weftd.env gives kube-subnet-mgr %v, ip-masq %v, subnet-file %s", o.KubeSubnetMgr, o.IPMasq, o.SubnetFile)
	}
}

// TestSystemdAnalyzeVerify has systemd's own parser check the unit (`make deps` installs systemd-analyze; a
// missing one fails the test outside -short). verify refuses an ExecStart that is not installed, so the unit is
// pointed at the built weftd.
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa := testenv.LookPath(t, "systemd-analyze")
	weftd := testenv.WeftBin(t, "weftd")
	unit, err := os.ReadFile(filepath.Join(distDir(t), "systemd", "weftd.service"))
	if err != nil {
		t.Fatal(err)
	}
	u := strings.Replace(string(unit), "ExecStart=/usr/local/bin/weftd", "ExecStart="+weftd, 1)
	if u == string(unit) {
		t.Fatal("weftd.service has no ExecStart=/usr/local/bin/weftd to point at the built weftd")
	}
	tmp := filepath.Join(t.TempDir(), "weftd.service")
	if err := os.WriteFile(tmp, []byte(u), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", tmp).CombinedOutput()
	// verify only warns (exit 0) about unknown keys or unparsable values: any output is a failure.
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// parseUnit reads a systemd unit into "Section.Key" -> values, failing on lines outside a section or without '='.
func parseUnit(t *testing.T, s string) map[string][]string {
	t.Helper()
	keys := map[string][]string{}
	section := ""
	for i, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = l[1 : len(l)-1]
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				t.Fatalf("weftd.service:%d: %q", i+1, l)
			}
			keys[section+"."+strings.TrimSpace(k)] = append(keys[section+"."+strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return keys
}
