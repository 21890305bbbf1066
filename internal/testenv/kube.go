package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/weftnet/weft/internal/services"
)

// KubeEnv is a real kube-apiserver (backed by its own etcd) on a free loopback port, with RBAC authorization
// and a static admin token. Tests get an admin client and can mint credentials for ServiceAccounts to prove
// that a set of RBAC rules is enough.
type KubeEnv struct {
	URL        string               // https://127.0.0.1:<port>
	Kubeconfig string               // path of an admin kubeconfig
	Token      string               // the admin bearer token (system:masters)
	Config     *rest.Config         // admin REST config
	Client     kubernetes.Interface // admin clientset
	EtcdURL    string

	api *services.APIServer
	dir string
	log string
}

// StartAPIServer starts etcd and kube-apiserver for one test and waits until /readyz answers ok. Both are
// killed when the test ends. The serving certificate is self-signed, so clients skip TLS verification.
func StartAPIServer(t testing.TB) *KubeEnv {
	t.Helper()
	bin := Bin(t, "kube-apiserver")
	etcdURL := StartEtcd(t)
	dir := t.TempDir()
	k := &KubeEnv{EtcdURL: etcdURL, dir: dir, log: filepath.Join(dir, "kube-apiserver.log")}
	api, err := services.StartAPIServer(context.Background(), launcher{t}, services.APIServerOptions{Bin: bin,
		Dir: filepath.Join(dir, "apiserver"), Log: k.log, EtcdURL: etcdURL, Host: "127.0.0.1", Port: freePort(t, "127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	k.api, k.URL, k.Kubeconfig, k.Token, k.Config, k.Client = api, api.URL, api.Kubeconfig, api.Token, api.Config, api.Client
	return k
}

// LogTail returns the end of the apiserver's log, for failure messages.
func (k *KubeEnv) LogTail() string { return services.Tail(k.log) }

// ControllerManagerLogTail returns the end of kube-controller-manager's log.
func (k *KubeEnv) ControllerManagerLogTail() string {
	return services.Tail(filepath.Join(k.dir, "kube-controller-manager.log"))
}

// RESTConfigForToken is a client configuration authenticating with a bearer token.
func (k *KubeEnv) RESTConfigForToken(token string) *rest.Config {
	return k.api.RESTConfigForToken(token)
}

// KubeconfigForToken writes a kubeconfig file authenticating with token and returns its path.
func (k *KubeEnv) KubeconfigForToken(t testing.TB, token string) string {
	t.Helper()
	return WriteKubeconfig(t, k.URL, token)
}

// WriteKubeconfig writes a kubeconfig for url authenticating with token into the test's temporary directory and
// returns its path.
func WriteKubeconfig(t testing.TB, url, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, []byte(services.Kubeconfig(url, token)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ServiceAccountToken creates namespace/name (and the namespace) if needed, binds it to a new ClusterRole with
// exactly rules, and returns a token for it. A client using the token can do what the rules allow and no more.
func (k *KubeEnv) ServiceAccountToken(t testing.TB, namespace, name string, rules []rbacv1.PolicyRule) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := k.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", namespace, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if _, err := k.Client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create service account %s/%s: %v", namespace, name, err)
	}
	role := namespace + ":" + name
	if _, err := k.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: role}, Rules: rules,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create cluster role %s: %v", role, err)
	}
	if _, err := k.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: namespace}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create cluster role binding %s: %v", role, err)
	}
	exp := int64(3600)
	tr, err := k.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s: %v", namespace, name, err)
	}
	return tr.Status.Token
}

// ControllerManagerOptions configure StartControllerManager's node IPAM.
type ControllerManagerOptions struct {
	ClusterCIDRs []string // e.g. {"10.244.0.0/16"} or {"10.244.0.0/16", "fd00:10:244::/56"}
	MaskIPv4     int      // default 24
	MaskIPv6     int      // default 64
}

// StartControllerManager runs kube-controller-manager with only the nodeipam controller, so Nodes get
// spec.podCIDR(s) as in a real cluster. It is killed when the test ends.
func (k *KubeEnv) StartControllerManager(t testing.TB, o ControllerManagerOptions) {
	t.Helper()
	bin := Bin(t, "kube-controller-manager")
	if o.MaskIPv4 == 0 {
		o.MaskIPv4 = 24
	}
	if o.MaskIPv6 == 0 {
		o.MaskIPv6 = 64
	}
	args := []string{"--kubeconfig=" + k.Kubeconfig, "--controllers=nodeipam", "--allocate-node-cidrs=true",
		"--cluster-cidr=" + strings.Join(o.ClusterCIDRs, ","),
		"--leader-elect=false", "--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", freePort(t, "127.0.0.1")),
		"--cert-dir=" + filepath.Join(k.dir, "kcm-certs"), "--use-service-account-credentials=false"}
	// The per-family mask flags are refused unless the cluster has that family.
	for _, c := range o.ClusterCIDRs {
		if strings.Contains(c, ":") {
			args = append(args, fmt.Sprintf("--node-cidr-mask-size-ipv6=%d", o.MaskIPv6))
		} else {
			args = append(args, fmt.Sprintf("--node-cidr-mask-size-ipv4=%d", o.MaskIPv4))
		}
	}
	if _, err := (launcher{t}).Launch(filepath.Join(k.dir, "kube-controller-manager.log"), bin, args...); err != nil {
		t.Fatalf("start kube-controller-manager: %v", err)
	}
}
