// Tests of the deployable artefacts in dist/: the per-backend Kubernetes manifests against weft's own parsers and
// a real kube-apiserver (server-side dry run, strict field validation), their RBAC against the real weftd, the init
// container's install step, the systemd unit and its environment file, and the Prometheus rules file.
package dist_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/weftnet/weft/internal/cni/install"
	"github.com/weftnet/weft/internal/daemon"
	"github.com/weftnet/weft/internal/nsutil"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/subnet"
)

// backends names the backend each per-backend manifest deploys; a new manifest must be added here.
var backends = map[string]string{
	"kube-weft.yaml":         "vxlan",
	"kube-weft-host-gw.yaml": "host-gw",
	"kube-weft-ali-vpc.yaml": "ali-vpc",
}

const (
	imageRepo = "ghcr.io/weftnet/weft:"
	cfgName   = "kube-flannel-cfg"
	dsName    = "kube-flannel-ds"
)

// skipShort leaves the tests that start binaries (kube-apiserver, weftd, weft) out of `make test-unit`.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts binaries; not part of the unit tier (-short)")
	}
}

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

// TestYAMLFiles: every YAML file under dist/ is either Kubernetes objects (each with apiVersion, kind and name) or
// a Prometheus rules file; anything else would be left out of the dry-run test unnoticed.
func TestYAMLFiles(t *testing.T) {
	kube := 0
	err := filepath.WalkDir(distDir(t), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return err
		}
		rel, _ := filepath.Rel(distDir(t), path)
		for i, doc := range readYAMLDocs(t, path) {
			var probe map[string]any
			if err := json.Unmarshal(doc, &probe); err != nil {
				t.Errorf("%s doc %d: %v", rel, i, err)
				continue
			}
			if _, ok := probe["groups"]; ok {
				checkPrometheusRules(t, rel, doc)
				continue
			}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(doc); err != nil || u.GetName() == "" {
				t.Errorf("%s doc %d: neither a Kubernetes object with a name nor Prometheus rule groups (%v)", rel, i, err)
				continue
			}
			kube++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if kube == 0 {
		t.Fatal("no Kubernetes objects found under dist/")
	}
}

// checkPrometheusRules checks the shape Prometheus loads (rule_files): groups of named rules with alert, expr,
// severity and a summary, every alert name once.
func checkPrometheusRules(t *testing.T, rel string, doc []byte) {
	var f struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Errorf("%s: not a Prometheus rules file: %v", rel, err)
		return
	}
	seen := map[string]bool{}
	for _, g := range f.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("%s: group %q without a name or rules", rel, g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: rule %q lacks alert, expr or summary", rel, r.Alert)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: rule %s: severity %q, want warning or critical", rel, r.Alert, s)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: rule %s: for %q: %v", rel, r.Alert, r.For, err)
				}
			}
			if seen[r.Alert] {
				t.Errorf("%s: alert %s defined twice", rel, r.Alert)
			}
			seen[r.Alert] = true
		}
	}
}

// TestManifests checks each per-backend manifest against weft itself: the RBAC is rbac.yaml's, net-conf.json
// parses with weft's parser and names the file's backend, cni-conf.json is the shipped conflist, and the DaemonSet's
// probes, metrics port and volumes match what weftd does with the DaemonSet's own arguments.
func TestManifests(t *testing.T) {
	rbac := loadManifest(t, "rbac.yaml")
	var sa *corev1.ServiceAccount
	for _, u := range rbac.objs {
		if u.GetKind() == "ServiceAccount" {
			sa = get[corev1.ServiceAccount](t, rbac, "ServiceAccount", u.GetName())
		}
	}
	if sa == nil {
		t.Fatal("rbac.yaml: no ServiceAccount")
	}
	role := get[rbacv1.ClusterRole](t, rbac, "ClusterRole", "flannel")
	binding := get[rbacv1.ClusterRoleBinding](t, rbac, "ClusterRoleBinding", "flannel")
	conflist, err := os.ReadFile(filepath.Join(distDir(t), "cni", "10-flannel.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, conflist, install.DefaultConflist) {
		t.Error("cni/10-flannel.conflist differs from the conflist weft install-cni installs by default")
	}
	ref := loadManifest(t, "kube-weft.yaml")

	for _, name := range kubeManifests(t) {
		t.Run(name, func(t *testing.T) {
			m := loadManifest(t, name)
			nsObj := get[corev1.Namespace](t, m, "Namespace", sa.Namespace)
			if got := nsObj.Labels["pod-security.kubernetes.io/enforce"]; got != "privileged" {
				t.Errorf("Namespace %s: pod-security.kubernetes.io/enforce=%q, want privileged (hostNetwork, hostPath)", nsObj.Name, got)
			}
			if m.objs[0].GetKind() != "Namespace" {
				t.Errorf("the Namespace must come first so that kubectl apply creates it before its objects")
			}

			// RBAC: the same subjects and rules as rbac.yaml.
			msa := get[corev1.ServiceAccount](t, m, "ServiceAccount", sa.Name)
			if msa.Namespace != sa.Namespace {
				t.Errorf("ServiceAccount in %q, rbac.yaml's in %q", msa.Namespace, sa.Namespace)
			}
			mrole := get[rbacv1.ClusterRole](t, m, "ClusterRole", role.Name)
			if !reflect.DeepEqual(mrole.Rules, role.Rules) {
				t.Errorf("ClusterRole %s rules differ from rbac.yaml's:\n got  %+v\n want %+v", role.Name, mrole.Rules, role.Rules)
			}
			mb := get[rbacv1.ClusterRoleBinding](t, m, "ClusterRoleBinding", binding.Name)
			if !reflect.DeepEqual(mb.RoleRef, binding.RoleRef) || !reflect.DeepEqual(mb.Subjects, binding.Subjects) {
				t.Errorf("ClusterRoleBinding differs from rbac.yaml's: %+v %+v", mb.RoleRef, mb.Subjects)
			}

			// ConfigMap: net-conf.json through weft's own parser, cni-conf.json the shipped conflist.
			cm := get[corev1.ConfigMap](t, m, "ConfigMap", cfgName)
			cfg, err := subnet.ParseConfig([]byte(cm.Data["net-conf.json"]))
			if err != nil {
				t.Fatalf("net-conf.json: %v", err)
			}
			if cfg.BackendType != backends[name] || cfg.BackendDefaulted {
				t.Errorf("net-conf.json: Backend.Type %q (defaulted %v), want %q named explicitly", cfg.BackendType, cfg.BackendDefaulted, backends[name])
			}
			if cfg.Network.String() != "10.244.0.0/16" || !cfg.EnableIPv4 {
				t.Errorf("net-conf.json: Network %v (IPv4 %v), want 10.244.0.0/16", cfg.Network, cfg.EnableIPv4)
			}
			if !jsonEqual(t, []byte(cm.Data["cni-conf.json"]), conflist) {
				t.Errorf("cni-conf.json differs from cni/10-flannel.conflist:\n%s", cm.Data["cni-conf.json"])
			}
			if strings.Contains(strings.ToLower(cm.Data["net-conf.json"]), "accesskey") {
				t.Error("net-conf.json carries an AccessKey: credentials belong to the RAM role or a Secret")
			}

			ds := get[appsv1.DaemonSet](t, m, "DaemonSet", dsName)
			checkDaemonSet(t, ds, cm, msa)
			checkImages(t, m)
			checkSameAsDefault(t, m, ref)
		})
	}
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

func checkDaemonSet(t *testing.T, ds *appsv1.DaemonSet, cm *corev1.ConfigMap, sa *corev1.ServiceAccount) {
	t.Helper()
	spec := &ds.Spec.Template.Spec
	if ds.Namespace != cm.Namespace || ds.Namespace != sa.Namespace {
		t.Errorf("DaemonSet in %q, ConfigMap in %q, ServiceAccount in %q", ds.Namespace, cm.Namespace, sa.Namespace)
	}
	if !spec.HostNetwork || spec.PriorityClassName != "system-node-critical" || spec.ServiceAccountName != sa.Name {
		t.Errorf("pod spec: hostNetwork %v, priorityClassName %q, serviceAccountName %q", spec.HostNetwork, spec.PriorityClassName, spec.ServiceAccountName)
	}
	if !slices.ContainsFunc(spec.Tolerations, func(tol corev1.Toleration) bool {
		return tol.Operator == corev1.TolerationOpExists && tol.Effect == corev1.TaintEffectNoSchedule && tol.Key == ""
	}) {
		t.Errorf("tolerations %+v: want operator Exists, effect NoSchedule (run on every node, as upstream)", spec.Tolerations)
	}
	linux := false
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, e := range term.MatchExpressions {
				linux = linux || (e.Key == "kubernetes.io/os" && e.Operator == corev1.NodeSelectorOpIn && slices.Equal(e.Values, []string{"linux"}))
			}
		}
	}
	if !linux {
		t.Error("no required node affinity kubernetes.io/os In [linux]")
	}

	c, o := weftdContainer(t, ds)
	if !o.KubeSubnetMgr || !o.IPMasq {
		t.Errorf("weftd: --kube-subnet-mgr %v, --ip-masq %v; want both", o.KubeSubnetMgr, o.IPMasq)
	}
	if o.HealthzPort == 0 {
		t.Fatal("weftd: --healthz-port is 0, so nothing serves the probes or /metrics")
	}
	if o.HealthzIP != "0.0.0.0" && o.HealthzIP != "" {
		t.Errorf("weftd: --healthz-ip=%s; the kubelet probes and Prometheus scrapes the node's address", o.HealthzIP)
	}
	metricsPort := -1
	for _, p := range c.Ports {
		if p.Name == "metrics" {
			metricsPort = int(p.ContainerPort)
		}
	}
	if metricsPort != o.HealthzPort {
		t.Errorf("container port named metrics is %d, weftd serves /metrics on --healthz-port=%d", metricsPort, o.HealthzPort)
	}
	for _, pr := range []struct {
		what  string
		probe *corev1.Probe
		path  string
	}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			t.Errorf("%s: want httpGet %s", pr.what, pr.path)
			continue
		}
		g := pr.probe.HTTPGet
		if g.Path != pr.path || g.Host != "" || (g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP) {
			t.Errorf("%s: %s://%s%s, want http %s on the pod (node) address", pr.what, g.Scheme, g.Host, g.Path, pr.path)
		}
		if p := resolvePort(t, c, g.Port); p != o.HealthzPort {
			t.Errorf("%s: port %d, weftd listens on --healthz-port=%d", pr.what, p, o.HealthzPort)
		}
	}
	ann := ds.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != strconv.Itoa(o.HealthzPort) {
		t.Errorf("pod annotations prometheus.io/scrape=%q prometheus.io/port=%q, want true and %d",
			ann["prometheus.io/scrape"], ann["prometheus.io/port"], o.HealthzPort)
	}
	sc := c.SecurityContext
	if sc == nil || sc.Privileged == nil || *sc.Privileged || sc.Capabilities == nil ||
		!slices.Equal(sorted(capStrings(sc.Capabilities.Add)), []string{"NET_ADMIN", "NET_RAW"}) {
		t.Errorf("securityContext %+v: want privileged false with capabilities NET_ADMIN, NET_RAW", sc)
	}

	// Environment: upstream's names, the node name and pod identity from the downward API.
	fields := map[string]string{"NODE_NAME": "spec.nodeName", "POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
	for _, e := range c.Env {
		if want, ok := fields[e.Name]; ok {
			if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != want {
				t.Errorf("env %s: want fieldRef %s", e.Name, want)
			}
			delete(fields, e.Name)
		}
		secretish := regexp.MustCompile(`(?i)key|secret|password|token`).MatchString(e.Name)
		if secretish && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			t.Errorf("env %s: a credential must come from a secretKeyRef, never a literal", e.Name)
		}
		if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil && (r.SecretKeyRef.Optional == nil || !*r.SecretKeyRef.Optional) {
			t.Errorf("env %s: secretKeyRef must be optional (the RAM role is the default)", e.Name)
		}
	}
	if len(fields) != 0 {
		t.Errorf("env lacks %v", fields)
	}
	if o.EventQueueDepth != 5000 {
		t.Errorf("EVENT_QUEUE_DEPTH gives %d, upstream's manifest sets 5000", o.EventQueueDepth)
	}

	// Volumes: where weftd's own paths land on the host.
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	hostPath := func(name, path string, typ *corev1.HostPathType) {
		v, ok := vols[name]
		if !ok || v.HostPath == nil || v.HostPath.Path != path {
			t.Errorf("volume %s: want hostPath %s", name, path)
			return
		}
		if typ != nil && (v.HostPath.Type == nil || *v.HostPath.Type != *typ) {
			t.Errorf("volume %s: want type %s", name, *typ)
		}
	}
	hostPath("run", "/run/flannel", nil)
	hostPath("cni-plugin", "/opt/cni/bin", nil)
	hostPath("cni", "/etc/cni/net.d", nil)
	foc := corev1.HostPathFileOrCreate
	hostPath("xtables-lock", "/run/xtables.lock", &foc)
	if v := vols["flannel-cfg"]; v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
		t.Errorf("volume flannel-cfg: want ConfigMap %s", cm.Name)
	}
	mounts := map[string]string{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.Name] = filepath.Clean(vm.MountPath)
	}
	if mounts["run"] != filepath.Dir(o.SubnetFile) {
		t.Errorf("weftd writes %s, volume run is mounted at %q", o.SubnetFile, mounts["run"])
	}
	if mounts["flannel-cfg"] != filepath.Dir(o.NetConfigPath) || cm.Data[filepath.Base(o.NetConfigPath)] == "" {
		t.Errorf("weftd reads %s, flannel-cfg is mounted at %q with keys %v", o.NetConfigPath, mounts["flannel-cfg"], slices.Sorted(maps.Keys(cm.Data)))
	}
	if mounts["xtables-lock"] != "/run/xtables.lock" {
		t.Errorf("xtables-lock mounted at %q, iptables takes /run/xtables.lock", mounts["xtables-lock"])
	}

	// The init step: weft's own installer, with the plugin and conflist from the image and the ConfigMap.
	if len(spec.InitContainers) != 1 {
		t.Fatalf("want one init container (weft install-cni), have %d", len(spec.InitContainers))
	}
	ic := spec.InitContainers[0]
	if len(ic.Command) != 1 || ic.Command[0] != "/opt/bin/weft" || len(ic.Args) == 0 || ic.Args[0] != "install-cni" {
		t.Errorf("init container %s: %v %v, want /opt/bin/weft install-cni ...", ic.Name, ic.Command, ic.Args)
	}
}

func capStrings(cs []corev1.Capability) []string {
	var out []string
	for _, c := range cs {
		out = append(out, string(c))
	}
	return out
}

func sorted(s []string) []string { sort.Strings(s); return s }

// checkImages: every container runs the one weft image, so a release changes one tag, and the programs the
// manifest starts are in it (the Dockerfile copies weftd, weft and flannel into /opt/bin).
func checkImages(t *testing.T, m *manifest) {
	t.Helper()
	ds := get[appsv1.DaemonSet](t, m, "DaemonSet", dsName)
	df, err := os.ReadFile(filepath.Join(distDir(t), "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]bool{}
	for _, c := range append(slices.Clone(ds.Spec.Template.Spec.InitContainers), ds.Spec.Template.Spec.Containers...) {
		images[c.Image] = true
		if !strings.HasPrefix(c.Image, imageRepo) {
			t.Errorf("container %s: image %q, want %s<version>", c.Name, c.Image, imageRepo)
		}
		progs := slices.Clone(c.Command)
		for _, a := range c.Args {
			if strings.HasPrefix(a, "/opt/bin/") {
				progs = append(progs, a)
			}
		}
		for _, p := range progs {
			if strings.HasPrefix(p, "/opt/bin/") && !regexp.MustCompile(`/out/`+regexp.QuoteMeta(filepath.Base(p))+`\b`).Match(df) {
				t.Errorf("container %s uses %s, which the Dockerfile does not put into /opt/bin", c.Name, p)
			}
		}
	}
	if len(images) != 1 {
		t.Errorf("containers use several images %v", images)
	}
}

// checkSameAsDefault: a per-backend manifest is kube-weft.yaml except for net-conf.json and, for ali-vpc, the
// optional credential env, so a fix made in one manifest cannot be forgotten in the others.
func checkSameAsDefault(t *testing.T, m, ref *manifest) {
	t.Helper()
	norm := func(mf *manifest) []map[string]any {
		var out []map[string]any
		for _, u := range mf.objs {
			o := u.DeepCopy().Object
			switch u.GetKind() {
			case "ConfigMap":
				unstructured.RemoveNestedField(o, "data", "net-conf.json")
			case "DaemonSet":
				cs, _, _ := unstructured.NestedSlice(o, "spec", "template", "spec", "containers")
				for _, c := range cs {
					c := c.(map[string]any)
					env, _ := c["env"].([]any)
					c["env"] = slices.DeleteFunc(env, func(e any) bool {
						ref, _, _ := unstructured.NestedMap(e.(map[string]any), "valueFrom", "secretKeyRef")
						return ref != nil
					})
				}
				_ = unstructured.SetNestedSlice(o, cs, "spec", "template", "spec", "containers")
			}
			out = append(out, o)
		}
		return out
	}
	a, b := norm(m), norm(ref)
	if len(a) != len(b) {
		t.Errorf("%d objects, kube-weft.yaml has %d", len(a), len(b))
		return
	}
	for i := range a {
		if d := diffPaths(a[i], b[i], ""); len(d) != 0 {
			t.Errorf("%s %s differs from kube-weft.yaml's beyond net-conf.json and credential env:\n%s",
				a[i]["kind"], b[i]["metadata"].(map[string]any)["name"], strings.Join(d, "\n"))
		}
	}
}

// diffPaths lists where two decoded JSON values differ, as path: this vs that.
func diffPaths(a, b any, path string) []string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			break
		}
		var out []string
		keys := maps.Clone(x)
		maps.Copy(keys, y)
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			out = append(out, diffPaths(x[k], y[k], path+"."+k)...)
		}
		return out
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			break
		}
		var out []string
		for i := range x {
			out = append(out, diffPaths(x[i], y[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	if reflect.DeepEqual(a, b) {
		return nil
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return []string{fmt.Sprintf("  %s: %s vs %s", path, ja, jb)}
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

// TestInitContainerInstallsCNI runs the init container's command line with the weft binary, its volume mounts
// mapped to temporary directories as the kubelet would bind them: the host's CNI bin dir gets the flannel plugin
// and its conf dir gets the ConfigMap's cni-conf.json as 10-flannel.conflist, upstream's name, which replaces an
// upstream install in place.
func TestInitContainerInstallsCNI(t *testing.T) {
	skipShort(t)
	weft := testenv.WeftBin(t, "weft")
	imageBin := filepath.Dir(weft) // the image's /opt/bin
	for _, name := range kubeManifests(t) {
		t.Run(name, func(t *testing.T) {
			m := loadManifest(t, name)
			ds := get[appsv1.DaemonSet](t, m, "DaemonSet", dsName)
			cm := get[corev1.ConfigMap](t, m, "ConfigMap", cfgName)
			ic := ds.Spec.Template.Spec.InitContainers[0]
			host := t.TempDir()
			binds := map[string]string{} // mount path in the container -> directory standing in for it
			for _, vm := range ic.VolumeMounts {
				var v *corev1.Volume
				for i := range ds.Spec.Template.Spec.Volumes {
					if ds.Spec.Template.Spec.Volumes[i].Name == vm.Name {
						v = &ds.Spec.Template.Spec.Volumes[i]
					}
				}
				if v == nil {
					t.Fatalf("init container mounts unknown volume %s", vm.Name)
				}
				switch {
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
				}
			}
			binds["/opt/bin"] = imageBin
			var args []string
			for _, a := range ic.Args {
				if strings.HasPrefix(a, "/") {
					mapped := ""
					for mp, d := range binds {
						if a == mp || strings.HasPrefix(a, mp+"/") {
							mapped = d + strings.TrimPrefix(a, mp)
						}
					}
					if mapped == "" {
						t.Fatalf("init container refers to %s, which is neither in a mount nor in the image's /opt/bin", a)
					}
					a = mapped
				}
				args = append(args, a)
			}
			if out, err := exec.Command(weft, args...).CombinedOutput(); err != nil {
				t.Fatalf("weft %v: %v\n%s", args, err, out)
			}
			plugin := filepath.Join(host, "opt/cni/bin/flannel")
			if st, err := os.Stat(plugin); err != nil || st.Mode()&0o111 == 0 {
				t.Errorf("host /opt/cni/bin/flannel not installed as an executable: %v", err)
			}
			got, err := os.ReadFile(filepath.Join(host, "etc/cni/net.d/10-flannel.conflist"))
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, got, []byte(cm.Data["cni-conf.json"])) {
				t.Errorf("installed conflist differs from cni-conf.json:\n%s", got)
			}
		})
	}
}

// TestManifestsServerDryRun applies every Kubernetes object under dist/ to a real kube-apiserver with server-side
// apply, dry run and strict field validation: a misspelt field, a wrong type or an invalid object fails. Each
// manifest's Namespace is created for real when it is reached, so objects placed before their Namespace fail as
// `kubectl apply -f` would on a fresh cluster.
func TestManifestsServerDryRun(t *testing.T) {
	skipShort(t)
	k, dc, mapper := startDryRunAPI(t)
	// The self-contained manifests first; rbac.yaml (used by the e2e tests, which create the namespace) last.
	files := append(kubeManifests(t), "rbac.yaml")
	for _, name := range files {
		t.Run(name, func(t *testing.T) { dryRun(t, dc, mapper, loadManifest(t, name)) })
	}
	// Dry run persists nothing.
	ctx := context.Background()
	if _, err := k.Client.AppsV1().DaemonSets("kube-flannel").Get(ctx, dsName, metav1.GetOptions{}); err == nil {
		t.Error("a dry-run DaemonSet was stored")
	}
}

// startDryRunAPI starts a kube-apiserver and returns it with a dynamic client and a REST mapper for dryRun.
func startDryRunAPI(t *testing.T) (*testenv.KubeEnv, dynamic.Interface, meta.RESTMapper) {
	t.Helper()
	k := testenv.StartAPIServer(t)
	dc, err := dynamic.NewForConfig(k.Config)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := restmapper.GetAPIGroupResources(k.Client.Discovery())
	if err != nil {
		t.Fatal(err)
	}
	return k, dc, restmapper.NewDiscoveryRESTMapper(groups)
}

// dryRun applies m's objects with server-side apply, dry run and strict field validation, creating each Namespace
// for real when it is reached.
func dryRun(t *testing.T, dc dynamic.Interface, mapper meta.RESTMapper, m *manifest) {
	t.Helper()
	for _, u := range m.objs {
		what := fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
		gvk := u.GroupVersionKind()
		mp, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		var ri dynamic.ResourceInterface = dc.Resource(mp.Resource)
		if mp.Scope.Name() == "namespace" {
			if u.GetNamespace() == "" {
				t.Errorf("%s: namespaced object without metadata.namespace would land in the current context's namespace", what)
				continue
			}
			ri = dc.Resource(mp.Resource).Namespace(u.GetNamespace())
		} else if u.GetNamespace() != "" {
			t.Errorf("%s: cluster-scoped object with a namespace", what)
		}
		body, err := json.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		apply := func(dry bool) (*unstructured.Unstructured, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			force := true
			opts := metav1.PatchOptions{FieldManager: "weft-dist-test", Force: &force, FieldValidation: "Strict"}
			if dry {
				opts.DryRun = []string{metav1.DryRunAll}
			}
			return ri.Patch(ctx, u.GetName(), types.ApplyPatchType, body, opts)
		}
		got, err := apply(true)
		if err != nil {
			t.Errorf("%s: server-side dry run: %v", what, err)
			continue
		}
		if got.GetName() != u.GetName() || got.GetKind() != u.GetKind() {
			t.Errorf("%s: dry run answered %s %s", what, got.GetKind(), got.GetName())
		}
		if u.GetKind() == "Namespace" {
			if _, err := apply(false); err != nil {
				t.Fatalf("%s: create: %v", what, err)
			}
		}
	}
}

// TestWeftdUnderManifestRBAC runs the real weftd as the manifest's ServiceAccount, with the DaemonSet's own
// command line, environment and net-conf.json, in a fresh network namespace: it becomes ready, writes subnet.env
// from the Node's podCIDR, annotates the Node and sets NetworkUnavailable=False, and is never refused. Without
// the nodes/status patch rule the same run is refused and never ready, so the rule is needed.
func TestWeftdUnderManifestRBAC(t *testing.T) {
	skipShort(t)
	testenv.RequireRoot(t)
	weftd := testenv.WeftBin(t, "weftd")
	testenv.LookPath(t, "iptables")
	m := loadManifest(t, "kube-weft.yaml")
	k := testenv.StartAPIServer(t)
	ctx := context.Background()

	nsObj := get[corev1.Namespace](t, m, "Namespace", "kube-flannel")
	sa := get[corev1.ServiceAccount](t, m, "ServiceAccount", "flannel")
	role := get[rbacv1.ClusterRole](t, m, "ClusterRole", "flannel")
	binding := get[rbacv1.ClusterRoleBinding](t, m, "ClusterRoleBinding", "flannel")
	if _, err := k.Client.CoreV1().Namespaces().Create(ctx, nsObj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Client.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	exp := int64(3600)
	tr, err := k.Client.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ds := get[appsv1.DaemonSet](t, m, "DaemonSet", dsName)
	cm := get[corev1.ConfigMap](t, m, "ConfigMap", cfgName)
	_, opts := weftdContainer(t, ds)
	prefix := opts.KubeAnnotPrefix + "/"

	t.Run("manifest rules", func(t *testing.T) {
		n := startNode(t, k, weftd, tr.Status.Token, ds, cm, "node-a", "10.244.3.0/24", "192.0.2.10")
		n.waitProbe(t, "readinessProbe", 200, 120*time.Second)
		if code, body := n.probe(t, "livenessProbe"); code != 200 {
			t.Errorf("/healthz: %d %s", code, body)
		}
		if code, body := n.get(t, "/metrics"); code != 200 || !regexp.MustCompile(`(?m)^weft_ready 1$`).MatchString(body) {
			t.Errorf("/metrics on the metrics port: %d, weft_ready 1 missing", code)
		}
		env, err := os.ReadFile(n.subnetFile)
		if err != nil || !regexp.MustCompile(`(?m)^FLANNEL_SUBNET=10\.244\.3\.1/24$`).Match(env) {
			t.Errorf("subnet.env: %v\n%s", err, env)
		}
		node, err := k.Client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		a := node.Annotations
		if a[prefix+"kube-subnet-manager"] != "true" || a[prefix+"backend-type"] != "vxlan" ||
			a[prefix+"public-ip"] != "192.0.2.10" || !strings.Contains(a[prefix+"backend-data"], "VtepMAC") {
			t.Errorf("node annotations: %v", a)
		}
		if st, reason := netUnavailable(node); st != corev1.ConditionFalse || reason != "FlannelIsUp" {
			t.Errorf("NetworkUnavailable %q (%s), want False (FlannelIsUp)", st, reason)
		}
		if log := n.log(); strings.Contains(strings.ToLower(log), "forbidden") {
			t.Errorf("weftd was refused something under the manifest's ClusterRole:\n%s", log)
		}
	})

	t.Run("without nodes/status patch", func(t *testing.T) {
		var rules []rbacv1.PolicyRule
		for _, r := range role.Rules {
			if slices.Contains(r.Resources, "nodes/status") {
				continue
			}
			rules = append(rules, r)
		}
		if len(rules) != len(role.Rules)-1 {
			t.Fatalf("expected exactly one nodes/status rule in %+v", role.Rules)
		}
		token := k.ServiceAccountToken(t, sa.Namespace, "flannel-no-status", rules)
		n := startNode(t, k, weftd, token, ds, cm, "node-b", "10.244.4.0/24", "192.0.2.11")
		deadline := time.Now().Add(90 * time.Second)
		for !strings.Contains(strings.ToLower(n.log()), "forbidden") {
			if n.exited() || time.Now().After(deadline) {
				t.Fatalf("weftd (exited %v) logged no forbidden:\n%s", n.exited(), n.log())
			}
			time.Sleep(200 * time.Millisecond)
		}
		code, body := n.probe(t, "readinessProbe")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "forbidden") || !strings.Contains(body, "nodes/status") {
			t.Errorf("/readyz %d %q: want 503 naming the refused nodes/status patch", code, body)
		}
		if _, err := os.Stat(n.subnetFile); err == nil {
			t.Error("subnet.env written although the node could not be annotated")
		}
		node, err := k.Client.CoreV1().Nodes().Get(ctx, "node-b", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := netUnavailable(node); st == corev1.ConditionFalse {
			t.Error("NetworkUnavailable=False although nodes/status patch is forbidden")
		}
	})
}

func netUnavailable(n *corev1.Node) (corev1.ConditionStatus, string) {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable {
			return c.Status, c.Reason
		}
	}
	return "", ""
}

// node is weftd running as one Kubernetes node inside its own network namespace.
type node struct {
	ns         netns.NsHandle
	c          *corev1.Container
	logPath    string
	subnetFile string
	port       int
	done       chan struct{}
	http       *http.Client
}

// startNode creates the Node (podCIDR, InternalIP) and a network namespace with eth0 holding addr, and runs weftd
// there with the DaemonSet container's command line and environment (downward API values filled in as the kubelet
// would) plus the paths a pod gets from its mounts. The API server listens on the host's loopback, so a forwarder
// listening on the namespace's loopback carries the kubeconfig's connections to it.
func startNode(t *testing.T, k *testenv.KubeEnv, weftd, token string, ds *appsv1.DaemonSet, cm *corev1.ConfigMap, name, podCIDR, addr string) *node {
	t.Helper()
	ctx := context.Background()
	nodeObj := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.NodeSpec{PodCIDR: podCIDR, PodCIDRs: []string{podCIDR}}}
	created, err := k.Client.CoreV1().Nodes().Create(ctx, nodeObj, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr}, {Type: corev1.NodeHostName, Address: name}}
	if _, err := k.Client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	ns, h := testenv.NewNetns(t)
	// eth0 is a veth whose peer stays in the namespace, up, so eth0 has carrier (no dummy module needed).
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", MTU: 1500}, PeerName: "eth0p"}); err != nil {
		t.Fatalf("eth0: %v", err)
	}
	for _, l := range []string{"eth0p", "eth0"} {
		link, err := h.LinkByName(l)
		if err != nil {
			t.Fatal(err)
		}
		if l == "eth0" {
			a, _ := netlink.ParseAddr(addr + "/24")
			if err := h.AddrAdd(link, a); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.LinkSetUp(link); err != nil {
			t.Fatal(err)
		}
	}
	apiURL, err := url.Parse(k.URL)
	if err != nil {
		t.Fatal(err)
	}
	port := forward(t, ns, apiURL.Host)
	inNS := *k
	inNS.URL = fmt.Sprintf("https://127.0.0.1:%d", port)
	kubeconfig := inNS.KubeconfigForToken(t, token)

	dir := t.TempDir()
	c, o := weftdContainer(t, ds)
	n := &node{ns: ns, c: c, logPath: filepath.Join(dir, "weftd.log"), subnetFile: filepath.Join(dir, "run", "subnet.env"),
		port: o.HealthzPort, done: make(chan struct{})}
	netConf := filepath.Join(dir, "net-conf.json")
	if err := os.WriteFile(netConf, []byte(cm.Data["net-conf.json"]), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(slices.Clone(c.Command[1:]), c.Args...)
	args = append(args, "--kubeconfig-file="+kubeconfig, "--net-config-path="+netConf, "--subnet-file="+n.subnetFile, "--iface=eth0")
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.FieldRef != nil:
			v := map[string]string{"spec.nodeName": name, "metadata.name": dsName + "-" + name, "metadata.namespace": ds.Namespace}[e.ValueFrom.FieldRef.FieldPath]
			if v == "" {
				t.Fatalf("env %s: fieldRef %s not modelled", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			env = append(env, e.Name+"="+v)
		}
	}
	logf, err := os.Create(n.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(weftd, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logf, logf
	var startErr error
	testenv.InNetns(t, ns, func() { startErr = cmd.Start() })
	if startErr != nil {
		logf.Close()
		t.Fatalf("start weftd: %v", startErr)
	}
	go func() { _ = cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-n.done
		}
		logf.Close()
		if t.Failed() {
			t.Logf("weftd log (%s):\n%s", name, n.log())
		}
	})
	n.http = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			var conn net.Conn
			err := nsutil.Do(ns, func() (err error) {
				var d net.Dialer
				conn, err = d.DialContext(ctx, network, address)
				return err
			})
			return conn, err
		}}}
	t.Cleanup(n.http.CloseIdleConnections)
	return n
}

// forward listens on 127.0.0.1 inside ns and carries each connection to target on the host's loopback; it
// returns the port. The listener and its connections close when the test ends.
func forward(t *testing.T, ns netns.NsHandle, target string) int {
	t.Helper()
	var ln net.Listener
	testenv.InNetns(t, ns, func() {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Errorf("listen in netns: %v", err)
		}
	})
	if ln == nil {
		t.FailNow()
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) { mu.Lock(); conns = append(conns, c); mu.Unlock() }
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target) // this goroutine's thread is in the host namespace
			if err != nil {
				in.Close()
				continue
			}
			track(in)
			track(out)
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(out, in); out.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

func (n *node) log() string {
	b, _ := os.ReadFile(n.logPath)
	return string(b)
}

func (n *node) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

func (n *node) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := n.http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", n.port, path))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// probe does what the kubelet does for the container's probe: GET its path on its (resolved) port.
func (n *node) probe(t *testing.T, which string) (int, string) {
	t.Helper()
	p := n.c.ReadinessProbe
	if which == "livenessProbe" {
		p = n.c.LivenessProbe
	}
	port := resolvePort(t, n.c, p.HTTPGet.Port)
	resp, err := n.http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, p.HTTPGet.Path))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (n *node) waitProbe(t *testing.T, which string, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, body := n.probe(t, which)
		if code == want {
			return
		}
		if n.exited() {
			t.Fatalf("weftd exited; %s last answered %d %s", which, code, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %d %q after %s", which, code, body, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSystemdUnit checks dist/systemd: the unit has what etcd mode needs, systemd-analyze verify accepts it (when
// installed), and every FLANNELD_* name in the environment file, also the commented examples, is a weftd flag
// whose value weftd accepts.
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

	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		// verify refuses an ExecStart that is not installed here, so point it at the built weftd (or /bin/true).
		exe := "/bin/true"
		if d := os.Getenv("WEFT_BIN"); d != "" {
			exe = filepath.Join(d, "weftd")
		} else if root, err := testenv.RepoRoot(); err == nil {
			if _, err := os.Stat(filepath.Join(root, "bin", "weftd")); err == nil {
				exe = filepath.Join(root, "bin", "weftd")
			}
		}
		tmp := filepath.Join(t.TempDir(), "weftd.service")
		u := strings.Replace(string(unit), "ExecStart=/usr/local/bin/weftd", "ExecStart="+exe, 1)
		if err := os.WriteFile(tmp, []byte(u), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sa, "verify", tmp).CombinedOutput()
		// verify only warns (exit 0) about unknown keys or unparsable values: any output is a failure.
		if err != nil || len(bytes.TrimSpace(out)) != 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	} else {
		t.Log("systemd-analyze not installed: checked the unit's keys only (make deps should install systemd)")
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
