package dist_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/weftnet/weft/internal/testenv"
)

// upstreamManifest finds upstream flannel's kube-flannel.yml in the module the tools pin (tools/flannel/go.mod),
// downloading the module through the Go proxy if the cache lacks it.
func upstreamManifest(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "tools", "flannel", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^require github.com/flannel-io/flannel (v\S+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("tools/flannel/go.mod does not require github.com/flannel-io/flannel")
	}
	cmd := exec.Command("go", "mod", "download", "-json", "github.com/flannel-io/flannel@"+string(m[1]))
	cmd.Dir = filepath.Join(root, "tools", "flannel")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download flannel %s: %v\n%s", m[1], err, out)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download: %v %s", err, out)
	}
	return filepath.Join(mod.Dir, "Documentation", "kube-flannel.yml")
}

// imagePaths is what weft's image holds at the paths a manifest can run: the binaries copied to /opt/bin and the
// links the Dockerfile makes, plus the base's coreutils.
func imagePaths(t *testing.T) map[string]bool {
	t.Helper()
	root, _ := testenv.RepoRoot()
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{"cp": true}
	for _, b := range []string{"weftd", "weft", "flannel"} {
		if !regexp.MustCompile(`COPY --from=build[^\n]*/out/` + b + `\b[^\n]* /opt/bin/`).Match(df) {
			t.Fatalf("the Dockerfile does not copy %s to /opt/bin/", b)
		}
		paths["/opt/bin/"+b] = true
	}
	for _, l := range regexp.MustCompile(`ln -s (\S+) (\S+)`).FindAllSubmatch(df, -1) {
		if paths[string(l[1])] {
			paths[string(l[2])] = true
		}
	}
	return paths
}

// Upstream's own kube-flannel.yml, with only the image names changed to weft's, is a valid manifest whose every
// container runs something weft's image has, whose main container's command line and environment weftd accepts,
// and whose install-cni step (install-conf) installs its conflist with weft's binary.
func TestUpstreamManifestDropIn(t *testing.T) {
	testenv.Integration(t) // downloads upstream flannel through the Go proxy, runs weft and the API server
	path := upstreamManifest(t)
	m := &manifest{name: "upstream kube-flannel.yml"}
	for _, d := range readYAMLDocs(t, path) {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(d); err != nil {
			t.Fatal(err)
		}
		m.objs = append(m.objs, u)
	}
	ds := get[appsv1.DaemonSet](t, m, "DaemonSet", dsName)
	have := imagePaths(t)
	spec := &ds.Spec.Template.Spec
	all := append(slices.Clone(spec.InitContainers), spec.Containers...)
	for i := range all {
		c := &all[i]
		if !strings.HasPrefix(c.Image, "ghcr.io/flannel-io/flannel") {
			t.Fatalf("container %s runs image %s: the drop-in story does not cover it", c.Name, c.Image)
		}
		c.Image = "ghcr.io/weftnet/weft:v0.1.0"
		if len(c.Command) == 0 || !have[c.Command[0]] {
			t.Errorf("container %s runs %v, which weft's image does not have (it has %v)", c.Name, c.Command, have)
		}
		for _, a := range c.Args {
			if strings.HasPrefix(a, "/opt/bin/") || a == "/flannel" {
				if !have[a] {
					t.Errorf("container %s uses %s, which weft's image does not have", c.Name, a)
				}
			}
		}
	}
	spec.InitContainers, spec.Containers = all[:len(spec.InitContainers)], all[len(spec.InitContainers):]
	c, o := weftdContainer(t, ds)
	if !o.KubeSubnetMgr || !o.IPMasq || o.HealthzPort == 0 {
		t.Errorf("container %s: weftd reads %v as kube-subnet-mgr=%v ip-masq=%v healthz-port=%d", c.Name, c.Args, o.KubeSubnetMgr, o.IPMasq, o.HealthzPort)
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ds)
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range m.objs {
		if u.GetKind() == "DaemonSet" {
			m.objs[i] = &unstructured.Unstructured{Object: obj}
			m.objs[i].SetAPIVersion("apps/v1")
			m.objs[i].SetKind("DaemonSet")
		}
	}

	// Every init container, as weft's image runs it. Only upstream's install-cni container (install-conf, a link
	// to weft in the image) writes into the host's CNI conf dir, so the conflist there, byte for byte the
	// ConfigMap's, shows that weft's install-conf ran; a manifest without that container fails here.
	cm := get[corev1.ConfigMap](t, m, "ConfigMap", "kube-flannel-cfg")
	img, host := imageRoot(t), t.TempDir()
	installConf := 0
	for _, ic := range spec.InitContainers {
		runInitContainer(t, ds, cm, ic, img, host)
		if ic.Command[0] == "/opt/bin/install-conf" {
			installConf++
		}
	}
	if installConf != 1 {
		t.Fatalf("%d init containers run /opt/bin/install-conf, want 1: the drop-in test no longer covers upstream's conflist install", installConf)
	}
	conflist := filepath.Join(host, "etc", "cni", "net.d", "10-flannel.conflist")
	if got, err := os.ReadFile(conflist); err != nil || string(got) != cm.Data["cni-conf.json"] {
		t.Fatalf("host /etc/cni/net.d/10-flannel.conflist: %v\n%q\nwant the ConfigMap's cni-conf.json, byte for byte", err, got)
	}
	if entries, _ := os.ReadDir(filepath.Dir(conflist)); len(entries) != 1 {
		t.Errorf("host /etc/cni/net.d holds %d entries, want only 10-flannel.conflist (no temporary file left)", len(entries))
	}
	if st, err := os.Stat(filepath.Join(host, "opt", "cni", "bin", "flannel")); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("host /opt/cni/bin/flannel not installed as an executable by upstream's install-cni-plugin: %v", err)
	}

	_, dc, mapper := startDryRunAPI(t)
	dryRun(t, dc, mapper, m)
}
