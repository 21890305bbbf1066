package dist_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/weftnet/weft/internal/cni/install"
	"github.com/weftnet/weft/subnet"
)

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
