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
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/weftnet/weft/backend/eni"
	"github.com/weftnet/weft/internal/cni/install"
	"github.com/weftnet/weft/internal/eni/cniproto"
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

// eniRules are the rules the eni backend's weftd needs, each for a call it makes: rbac.yaml's (the kube subnet
// manager, the coordinator, the NetworkPolicy engine) with the StatefulSets added. backend/eni/kube_test.go
// runs the Kubernetes side with exactly its first five rules against a real API server.
var eniRules = []rbacv1.PolicyRule{
	// KubePods: an informer on this node's pods (GC of addresses); the CNI handler gets a pod not yet listed.
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
	// KubeNodes: every node's existence, cordon and deletion (GC of detached ENIs); the subnet manager's informer.
	{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
	// KubeNodeStatus: NetworkUnavailable and the capacity annotations, both through nodes/status.
	{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"patch"}},
	// KubeStatefulSets: a reserved address's StatefulSet, for its scale-down (ip_reservation_ttl).
	{APIGroups: []string{"apps"}, Resources: []string{"statefulsets"}, Verbs: []string{"get"}},
	// coordination.Kube's Lease weft-eni-gc (client-go's leader election: get, create, update).
	{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}},
	// KubeEvents: client-go's broadcaster creates Events and patches a repeated one's count.
	{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	// wiring.go clusterID: the kube-system namespace's UID is the default cluster_id; podnet.go: a pod's
	// Namespace's default vSwitches and security groups, at each ADD; the NetworkPolicy engine's informer.
	{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
	// The NetworkPolicy engine's informer (internal/policy/engine), as in rbac.yaml.
	{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"list", "watch"}},
}

// TestManifests checks each per-backend manifest against weft itself: the RBAC is rbac.yaml's (the eni
// backend's: eniRules), net-conf.json passes weftd's own check of it and names the file's backend, cni-conf.json is
// the shipped conflist install-cni installs for the backend, and the DaemonSet's probes, metrics port and volumes
// match what weftd does with the DaemonSet's own arguments and configuration.
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
	for _, b := range install.Backends {
		shipped, err := os.ReadFile(filepath.Join(distDir(t), "cni", b.ConfName))
		if err != nil {
			t.Fatalf("install-cni --backend %s installs %s by default: %v", b.Name, b.ConfName, err)
		}
		if !jsonEqual(t, shipped, b.Conflist) {
			t.Errorf("cni/%s differs from the conflist weft install-cni --backend %s installs by default", b.ConfName, b.Name)
		}
	}
	ref := loadManifest(t, "kube-weft.yaml")

	for _, name := range kubeManifests(t) {
		t.Run(name, func(t *testing.T) {
			spec := backends[name]
			m := loadManifest(t, name)
			nsObj := get[corev1.Namespace](t, m, "Namespace", sa.Namespace)
			if got := nsObj.Labels["pod-security.kubernetes.io/enforce"]; got != "privileged" {
				t.Errorf("Namespace %s: pod-security.kubernetes.io/enforce=%q, want privileged (hostNetwork, hostPath)", nsObj.Name, got)
			}
			if m.objs[0].GetKind() != "Namespace" {
				t.Errorf("the Namespace must come first so that kubectl apply creates it before its objects")
			}

			// RBAC: the same subjects as rbac.yaml; its rules, or the eni backend's.
			msa := get[corev1.ServiceAccount](t, m, "ServiceAccount", sa.Name)
			if msa.Namespace != sa.Namespace {
				t.Errorf("ServiceAccount in %q, rbac.yaml's in %q", msa.Namespace, sa.Namespace)
			}
			wantRules, from := role.Rules, "rbac.yaml's"
			if spec.backend == "eni" {
				wantRules, from = eniRules, "the eni backend's (eniRules)"
			}
			mrole := get[rbacv1.ClusterRole](t, m, "ClusterRole", role.Name)
			if !reflect.DeepEqual(mrole.Rules, wantRules) {
				t.Errorf("ClusterRole %s rules differ from %s:\n got  %+v\n want %+v", role.Name, from, mrole.Rules, wantRules)
			}
			mb := get[rbacv1.ClusterRoleBinding](t, m, "ClusterRoleBinding", binding.Name)
			if !reflect.DeepEqual(mb.RoleRef, binding.RoleRef) || !reflect.DeepEqual(mb.Subjects, binding.Subjects) {
				t.Errorf("ClusterRoleBinding differs from rbac.yaml's: %+v %+v", mb.RoleRef, mb.Subjects)
			}

			// ConfigMap: net-conf.json through weft's own parsers, cni-conf.json the shipped conflist.
			cm := get[corev1.ConfigMap](t, m, "ConfigMap", cfgName)
			cfg, err := subnet.ParseConfig([]byte(cm.Data["net-conf.json"]))
			if err != nil {
				t.Fatalf("net-conf.json: %v", err)
			}
			if cfg.BackendType != spec.backend || cfg.BackendDefaulted {
				t.Errorf("net-conf.json: Backend.Type %q (defaulted %v), want %q named explicitly", cfg.BackendType, cfg.BackendDefaulted, spec.backend)
			}
			switch {
			case spec.subnetless && (cfg.Network.IsValid() || cfg.IPv6Network.IsValid()):
				t.Errorf("net-conf.json: Network %v %v: the %s backend gives nodes no subnet, so none belongs here", cfg.Network, cfg.IPv6Network, spec.backend)
			case !spec.subnetless && (cfg.Network.String() != "10.244.0.0/16" || !cfg.EnableIPv4):
				t.Errorf("net-conf.json: Network %v (IPv4 %v), want 10.244.0.0/16", cfg.Network, cfg.EnableIPv4)
			}
			conflist, err := os.ReadFile(filepath.Join(distDir(t), "cni", spec.conflist))
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, []byte(cm.Data["cni-conf.json"]), conflist) {
				t.Errorf("cni-conf.json differs from cni/%s:\n%s", spec.conflist, cm.Data["cni-conf.json"])
			}
			if err := install.CheckConflist([]byte(cm.Data["cni-conf.json"])); err != nil {
				t.Errorf("cni-conf.json: %v", err)
			}
			if strings.Contains(strings.ToLower(cm.Data["net-conf.json"]), "accesskey") {
				t.Error("net-conf.json carries an AccessKey: credentials belong to the RAM role or a Secret")
			}

			ds := get[appsv1.DaemonSet](t, m, "DaemonSet", dsName)
			_, o := weftdContainer(t, ds)
			// weftd's own start-up check of the file: parses, names a backend weftd has, and that backend accepts
			// its Backend object (the eni backend: every key through eni.ParseConfig).
			o.NetConfigPath = filepath.Join(t.TempDir(), "net-conf.json")
			if err := os.WriteFile(o.NetConfigPath, []byte(cm.Data["net-conf.json"]), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := o.CheckNetConf(); err != nil {
				t.Errorf("weftd refuses net-conf.json: %v", err)
			}
			paths := weftdPaths{runDir: "/run/flannel", subnetFile: true}
			if spec.backend == "eni" {
				ecfg, err := eni.ParseConfig(cfg.Backend)
				if err != nil {
					t.Fatalf("net-conf.json Backend: %v", err)
				}
				paths = weftdPaths{runDir: filepath.Dir(ecfg.Socket), stateDir: "/var/lib/weft", stateFile: ecfg.Checkpoint}
				checkENIConflist(t, []byte(cm.Data["cni-conf.json"]), ecfg.Socket)
			}
			checkDaemonSet(t, ds, cm, msa, spec, paths)
			checkImages(t, m)
			checkSameAsDefault(t, m, ref, spec)
		})
	}
}

// weftdPaths are the host paths weftd uses that the DaemonSet must mount from the host.
type weftdPaths struct {
	runDir     string // the volume "run": /run/flannel (subnet.env) or the CNI socket's directory
	subnetFile bool   // weftd writes --subnet-file there
	stateDir   string // the volume "state" ("" for none)
	stateFile  string // a file weftd keeps under stateDir (the eni checkpoint)
}

// checkENIConflist: the weft-eni plugin talks to the socket weftd serves, with a timeout the plugin accepts.
func checkENIConflist(t *testing.T, conflist []byte, socket string) {
	t.Helper()
	var c struct {
		Plugins []struct {
			Type    string `json:"type"`
			Socket  string `json:"socket"`
			Timeout string `json:"timeout"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(conflist, &c); err != nil {
		t.Fatalf("cni-conf.json: %v", err)
	}
	if len(c.Plugins) != 1 || c.Plugins[0].Type != "weft-eni" {
		t.Fatalf("cni-conf.json plugins %+v: want weft-eni alone (no portmap: hostPort is not supported)", c.Plugins)
	}
	p := c.Plugins[0]
	sock := p.Socket
	if sock == "" {
		sock = cniproto.DefaultSocket
	}
	if sock != socket {
		t.Errorf("weft-eni asks %s, weftd serves net-conf.json's socket %s", sock, socket)
	}
	if d, err := time.ParseDuration(p.Timeout); p.Timeout != "" && (err != nil || d < time.Second || d > 10*time.Minute) {
		t.Errorf("weft-eni timeout %q: the plugin takes 1s..10m", p.Timeout)
	}
}

func checkDaemonSet(t *testing.T, ds *appsv1.DaemonSet, cm *corev1.ConfigMap, sa *corev1.ServiceAccount, want backendSpec, paths weftdPaths) {
	t.Helper()
	wantCNI := want.cni
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
	if !o.KubeSubnetMgr || o.IPMasq != want.ipMasq {
		t.Errorf("weftd: --kube-subnet-mgr %v, --ip-masq %v; want --kube-subnet-mgr, --ip-masq %v", o.KubeSubnetMgr, o.IPMasq, want.ipMasq)
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
	doc := corev1.HostPathDirectoryOrCreate
	if paths.subnetFile {
		hostPath("run", paths.runDir, nil) // upstream's volume, as it is
	} else {
		hostPath("run", paths.runDir, &doc)
	}
	if paths.stateDir != "" {
		hostPath("state", paths.stateDir, &doc)
	} else if _, ok := vols["state"]; ok {
		t.Error("volume state: this backend keeps no state on the host")
	}
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
	switch {
	case paths.subnetFile && mounts["run"] != filepath.Dir(o.SubnetFile):
		t.Errorf("weftd writes %s, volume run is mounted at %q", o.SubnetFile, mounts["run"])
	case !paths.subnetFile && mounts["run"] != paths.runDir:
		// The host's CNI plugin dials the socket by the path weftd was configured with: the same on both sides.
		t.Errorf("weftd serves the CNI socket in %s, volume run is mounted at %q", paths.runDir, mounts["run"])
	}
	if paths.stateDir != "" && (mounts["state"] != paths.stateDir || !strings.HasPrefix(paths.stateFile, paths.stateDir+"/")) {
		t.Errorf("weftd keeps %s, volume state (host %s) is mounted at %q", paths.stateFile, paths.stateDir, mounts["state"])
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
	if got := flagValue(ic.Args, "--backend"); got != wantCNI {
		t.Errorf("init container %s: install-cni --backend %q, want %q", ic.Name, got, wantCNI)
	}
}

// flagValue is the value of flag name in args (--name v or --name=v), "" when absent.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
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
		if len(c.Args) > 0 && c.Args[0] == "install-cni" && !slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--plugins") }) {
			// install-cni copies its backend's default plugins from the image.
			b, err := install.ForBackend(flagValue(c.Args, "--backend"))
			if err != nil {
				t.Errorf("container %s: %v", c.Name, err)
			}
			progs = append(progs, b.Plugins...)
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

// checkSameAsDefault: a per-backend manifest is kube-weft.yaml except for net-conf.json, the optional credential
// env and the backend's documented differences (documentedDiffs), so a fix made in one manifest cannot be forgotten
// in the others.
func checkSameAsDefault(t *testing.T, m, ref *manifest, spec backendSpec) {
	t.Helper()
	norm := func(mf *manifest) []map[string]any {
		var out []map[string]any
		for _, u := range mf.objs {
			o := u.DeepCopy().Object
			switch u.GetKind() {
			case "ConfigMap":
				unstructured.RemoveNestedField(o, "data", "net-conf.json")
				if spec.cni != "" { // another plugin's conflist, held to cni/<conflist> above
					unstructured.RemoveNestedField(o, "data", "cni-conf.json")
				}
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
	if spec.backend == "eni" {
		for _, o := range b {
			eniDiffs(t, o)
		}
	}
	for i := range a {
		if d := diffPaths(a[i], b[i], ""); len(d) != 0 {
			t.Errorf("%s %s differs from kube-weft.yaml's beyond net-conf.json, credential env and the backend's documented differences:\n%s",
				a[i]["kind"], b[i]["metadata"].(map[string]any)["name"], strings.Join(d, "\n"))
		}
	}
}

// eniDiffs turns one of kube-weft.yaml's objects into what kube-weft-eni.yaml must hold (dist/README.md, "eni"):
// the ClusterRole's rules are eniRules (cni-conf.json, weft-eni's conflist, is left out by the caller); install-cni
// runs with --backend eni --plugins /opt/bin/weft-eni instead of --plugins /opt/bin/flannel; weftd runs without --ip-masq; the volume run is the
// host's /run/weft (the CNI socket), and a volume state, the host's /var/lib/weft (the checkpoint), is mounted
// beside it.
func eniDiffs(t *testing.T, o map[string]any) {
	t.Helper()
	switch o["kind"] {
	case "ClusterRole":
		var rules []any
		for _, r := range eniRules {
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&r)
			if err != nil {
				t.Fatal(err)
			}
			rules = append(rules, u)
		}
		o["rules"] = rules
	case "DaemonSet":
		pod, _, _ := unstructured.NestedMap(o, "spec", "template", "spec")
		ic := pod["initContainers"].([]any)[0].(map[string]any)
		var args []any
		for i := 0; i < len(ic["args"].([]any)); i++ {
			if a := ic["args"].([]any)[i]; a == "--plugins" {
				args = append(args, "--backend", "eni", "--plugins", "/opt/bin/weft-eni")
				i++
			} else {
				args = append(args, a)
			}
		}
		ic["args"] = args
		c := pod["containers"].([]any)[0].(map[string]any)
		c["args"] = slices.DeleteFunc(c["args"].([]any), func(a any) bool { return a == "--ip-masq" })
		var mounts []any
		for _, vm := range c["volumeMounts"].([]any) {
			mounts = append(mounts, vm)
			if vm := vm.(map[string]any); vm["name"] == "run" {
				vm["mountPath"] = "/run/weft"
				mounts = append(mounts, map[string]any{"name": "state", "mountPath": "/var/lib/weft"})
			}
		}
		c["volumeMounts"] = mounts
		var vols []any
		for _, v := range pod["volumes"].([]any) {
			vols = append(vols, v)
			if v := v.(map[string]any); v["name"] == "run" {
				v["hostPath"] = map[string]any{"path": "/run/weft", "type": "DirectoryOrCreate"}
				vols = append(vols, map[string]any{"name": "state", "hostPath": map[string]any{"path": "/var/lib/weft", "type": "DirectoryOrCreate"}})
			}
		}
		pod["volumes"] = vols
		_ = unstructured.SetNestedMap(o, pod, "spec", "template", "spec")
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
