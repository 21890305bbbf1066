package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// ApplyRBAC creates the RBAC objects of a manifest (dist/rbac.yaml, or a whole dist/kube-weft-*.yaml whose
// Namespace, ConfigMap and DaemonSet it leaves out: ServiceAccount, ClusterRole, ClusterRoleBinding) and returns a
// kubeconfig file authenticating as the ServiceAccount, so daemons run with exactly the permissions the manifest
// grants.
func (k *Kube) ApplyRBAC(ctx context.Context, manifest, dir string) (string, error) {
	data, err := os.ReadFile(manifest)
	if err != nil {
		return "", err
	}
	var sa *corev1.ServiceAccount
	for _, doc := range strings.Split(string(data), "\n---") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return "", fmt.Errorf("%s: %w", manifest, err)
		}
		switch meta.Kind {
		case "ServiceAccount":
			sa = &corev1.ServiceAccount{}
			if err := yaml.Unmarshal([]byte(doc), sa); err != nil {
				return "", err
			}
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sa.Namespace}}
			if _, err := k.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
				return "", err
			}
			if _, err := k.Client.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
				return "", err
			}
		case "ClusterRole":
			var r rbacv1.ClusterRole
			if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
				return "", err
			}
			if _, err := k.Client.RbacV1().ClusterRoles().Create(ctx, &r, metav1.CreateOptions{}); err != nil {
				return "", err
			}
		case "ClusterRoleBinding":
			var b rbacv1.ClusterRoleBinding
			if err := yaml.Unmarshal([]byte(doc), &b); err != nil {
				return "", err
			}
			if _, err := k.Client.RbacV1().ClusterRoleBindings().Create(ctx, &b, metav1.CreateOptions{}); err != nil {
				return "", err
			}
		case "", "Namespace", "ConfigMap", "DaemonSet":
		default:
			return "", fmt.Errorf("%s: unexpected kind %s", manifest, meta.Kind)
		}
	}
	if sa == nil {
		return "", fmt.Errorf("%s: no ServiceAccount", manifest)
	}
	exp := int64(3600)
	tr, err := k.Client.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for %s/%s: %w", sa.Namespace, sa.Name, err)
	}
	path := filepath.Join(dir, "kubeconfig-"+sa.Name)
	return path, os.WriteFile(path, []byte(KubeconfigFor(k.URL, tr.Status.Token)), 0o600)
}
