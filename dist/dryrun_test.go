package dist_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/weftnet/weft/internal/testenv"
)

// TestManifestsServerDryRun applies every Kubernetes object under dist/ to a real kube-apiserver with server-side
// apply, dry run and strict field validation: a misspelt field, a wrong type or an invalid object fails. Each
// manifest's Namespace is created for real when it is reached, so objects placed before their Namespace fail as
// `kubectl apply -f` would on a fresh cluster.
func TestManifestsServerDryRun(t *testing.T) {
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
