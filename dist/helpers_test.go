// Tests of the deployable artefacts in dist/: the per-backend Kubernetes manifests against weft's own parsers and
// a real kube-apiserver (server-side dry run, strict field validation), their RBAC against the real weftd, the init
// container's install step, the systemd unit and its environment file, the Prometheus rules file, and upstream's
// kube-flannel.yml run unchanged on weft's image.
//
// One file per concern: manifests_test.go (static checks of every YAML file), dryrun_test.go (the API server),
// rbac_test.go (weftd, and the eni backend's Kubernetes side, under the manifest's ServiceAccount), install_test.go (the init container), systemd_test.go,
// dropin_test.go (upstream's manifest); this file holds what they share: loading manifests and reading weftd's
// options from a DaemonSet.
package dist_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/weftnet/weft/internal/daemon"
	"github.com/weftnet/weft/internal/testenv"
)

// backendSpec is what a per-backend manifest must deploy where the backends differ; everything else it holds
// equals kube-weft.yaml's (checkSameAsDefault).
type backendSpec struct {
	backend string // net-conf.json's Backend.Type
	// subnetless: no Network in net-conf.json and no subnet.env; pods get their addresses from the backend.
	subnetless bool
	// ipMasq: weftd runs with --ip-masq (pods' traffic leaving the cluster network is masqueraded).
	ipMasq bool
	// cni is install-cni's --backend ("" for its default, flannel): the plugin and conflist the init step
	// installs (install.ForBackend), and conflist the file under dist/cni/ that cni-conf.json must equal.
	cni      string
	conflist string
	// plugin is the CNI plugin binary installed into the host's /opt/cni/bin.
	plugin string
}

// backends names what each per-backend manifest deploys; a new manifest must be added here.
var backends = map[string]backendSpec{
	"kube-weft.yaml":         {backend: "vxlan", ipMasq: true, conflist: "10-flannel.conflist", plugin: "flannel"},
	"kube-weft-host-gw.yaml": {backend: "host-gw", ipMasq: true, conflist: "10-flannel.conflist", plugin: "flannel"},
	"kube-weft-ali-vpc.yaml": {backend: "ali-vpc", ipMasq: true, conflist: "10-flannel.conflist", plugin: "flannel"},
	"kube-weft-eni.yaml":     {backend: "eni", subnetless: true, cni: "eni", conflist: "10-weft-eni.conflist", plugin: "weft-eni"},
}

const (
	imageRepo = "ghcr.io/weftnet/weft:"
	cfgName   = "kube-flannel-cfg"
	dsName    = "kube-flannel-ds"
)

func distDir(t testing.TB) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return filepath.Join(root, "dist")
}

// readYAMLDocs splits a YAML file into its documents (as kubectl does) and returns each as JSON, leaving out
// documents that are empty or only comments.
func readYAMLDocs(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var docs [][]byte
	for {
		b, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if s := strings.TrimSpace(string(j)); s == "null" || s == "" || s == "{}" {
			continue
		}
		docs = append(docs, j)
	}
}

// manifest is one file's Kubernetes objects, in file order.
type manifest struct {
	name string
	objs []*unstructured.Unstructured
}

func loadManifest(t testing.TB, name string) *manifest {
	t.Helper()
	m := &manifest{name: name}
	for _, d := range readYAMLDocs(t, filepath.Join(distDir(t), name)) {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m.objs = append(m.objs, u)
	}
	return m
}

func (m *manifest) find(t testing.TB, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, u := range m.objs {
		if u.GetKind() == kind && u.GetName() == name {
			return u
		}
	}
	t.Fatalf("%s: no %s %q", m.name, kind, name)
	return nil
}

// get decodes m's kind/name into a typed object, refusing unknown fields.
func get[T any](t testing.TB, m *manifest, kind, name string) *T {
	t.Helper()
	var v T
	u := m.find(t, kind, name)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &v, true); err != nil {
		t.Fatalf("%s: %s %s: %v", m.name, kind, name, err)
	}
	return &v
}

func kubeManifests(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(distDir(t), "kube-weft*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	want := slices.Sorted(maps.Keys(backends))
	if !slices.Equal(names, want) {
		t.Fatalf("dist/kube-weft*.yaml are %v, the tests know %v: add the new manifest's backend to backends", names, want)
	}
	return names
}

// weftdContainer returns the container running weftd and its options as weftd parses its command line.
func weftdContainer(t testing.TB, ds *appsv1.DaemonSet) (*corev1.Container, *daemon.Options) {
	t.Helper()
	for i := range ds.Spec.Template.Spec.Containers {
		c := &ds.Spec.Template.Spec.Containers[i]
		if len(c.Command) == 0 || (c.Command[0] != "/opt/bin/weftd" && c.Command[0] != "/opt/bin/flanneld") {
			continue
		}
		o := &daemon.Options{}
		fs := flag.NewFlagSet("weftd", flag.ContinueOnError)
		o.AddFlags(fs)
		if err := fs.Parse(append(slices.Clone(c.Command[1:]), c.Args...)); err != nil {
			t.Fatalf("container %s: weftd refuses its arguments: %v", c.Name, err)
		}
		if fs.NArg() != 0 {
			t.Fatalf("container %s: weftd ignores arguments %v", c.Name, fs.Args())
		}
		// The environment as the kubelet gives it (literal values; downward API values are checked below).
		env := map[string]string{}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				env[e.Name] = e.Value
			}
		}
		if err := o.ApplyEnv(fs, func(k string) string { return env[k] }); err != nil {
			t.Fatalf("container %s: environment: %v", c.Name, err)
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("container %s: %v", c.Name, err)
		}
		return c, o
	}
	t.Fatalf("DaemonSet %s: no container running /opt/bin/weftd", ds.Name)
	return nil, nil
}

func resolvePort(t testing.TB, c *corev1.Container, p intstr.IntOrString) int {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	t.Fatalf("container %s: no port named %q", c.Name, p.StrVal)
	return 0
}

func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%v in %s", err, a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return reflect.DeepEqual(x, y)
}

// imageRoot builds a directory standing in for weft's image root: the built weftd, weft, flannel and weft-eni in opt/bin,
// as the Dockerfile copies them, and the links the Dockerfile makes (flanneld, install-conf, /flannel).
func imageRoot(t *testing.T) string {
	t.Helper()
	img := t.TempDir()
	if err := os.MkdirAll(filepath.Join(img, "opt", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"weftd", "weft", "flannel", "weft-eni"} {
		if err := os.Symlink(testenv.WeftBin(t, b), filepath.Join(img, "opt", "bin", b)); err != nil {
			t.Fatal(err)
		}
	}
	df, err := os.ReadFile(filepath.Join(distDir(t), "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	links := regexp.MustCompile(`ln -s (/\S+) (/\S+)`).FindAllSubmatch(df, -1)
	if len(links) == 0 {
		t.Fatal("the Dockerfile makes no links (ln -s): the image stand-in would lack install-conf and flanneld")
	}
	for _, l := range links {
		if err := os.Symlink(filepath.Join(img, string(l[1])), filepath.Join(img, string(l[2]))); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// runInitContainer runs init container ic of ds as the kubelet would on the image stand-in img: each hostPath
// volume it mounts is host/<hostPath>, each ConfigMap volume a fresh directory holding cm's keys, and any other
// absolute path in its command or arguments is the image's (and must exist there). A command without a slash is
// the base image's (cp) and runs from PATH. The test fails when the container fails.
func runInitContainer(t *testing.T, ds *appsv1.DaemonSet, cm *corev1.ConfigMap, ic corev1.Container, img, host string) {
	t.Helper()
	binds := map[string]string{} // mount path in the container -> directory standing in for it
	for _, vm := range ic.VolumeMounts {
		var v *corev1.Volume
		for i := range ds.Spec.Template.Spec.Volumes {
			if ds.Spec.Template.Spec.Volumes[i].Name == vm.Name {
				v = &ds.Spec.Template.Spec.Volumes[i]
			}
		}
		switch {
		case v == nil:
			t.Fatalf("init container %s mounts unknown volume %s", ic.Name, vm.Name)
		case v.HostPath != nil:
			d := filepath.Join(host, v.HostPath.Path)
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			binds[filepath.Clean(vm.MountPath)] = d
		case v.ConfigMap != nil:
			d := t.TempDir()
			for k, val := range cm.Data {
				if err := os.WriteFile(filepath.Join(d, k), []byte(val), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			binds[filepath.Clean(vm.MountPath)] = d
		default:
			t.Fatalf("init container %s mounts volume %s, neither hostPath nor ConfigMap", ic.Name, vm.Name)
		}
	}
	mapPath := func(p string) string {
		best := ""
		for mp := range binds {
			if (p == mp || strings.HasPrefix(p, mp+"/")) && len(mp) > len(best) {
				best = mp
			}
		}
		if best != "" {
			return binds[best] + strings.TrimPrefix(p, best)
		}
		if _, err := os.Lstat(filepath.Join(img, p)); err != nil {
			t.Fatalf("init container %s refers to %s, which is neither in a mount nor in weft's image", ic.Name, p)
		}
		return filepath.Join(img, p)
	}
	if len(ic.Command) == 0 {
		t.Fatalf("init container %s has no command", ic.Name)
	}
	argv := append(slices.Clone(ic.Command), ic.Args...)
	for i, a := range argv {
		if strings.HasPrefix(a, "/") {
			argv[i] = mapPath(a)
		}
	}
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("init container %s: %v: %v\n%s", ic.Name, argv, err, out)
	}
}
