package testenv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
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

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	token := "weft-test-admin-" + randomHex(t, 16)
	files := map[string][]byte{
		"sa.key":     pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"sa.pub":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
		"tokens.csv": []byte(token + ",admin,admin-uid,system:masters\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	port := freePort(t, "127.0.0.1")
	k := &KubeEnv{URL: fmt.Sprintf("https://127.0.0.1:%d", port), Token: token, EtcdURL: etcdURL, dir: dir,
		log: filepath.Join(dir, "kube-apiserver.log")}
	logf, err := os.Create(k.log)
	if err != nil {
		t.Fatal(err)
	}
	// --endpoint-reconciler-type=none: the default reconciler refuses a loopback advertise address.
	cmd := exec.Command(bin,
		"--etcd-servers="+etcdURL, "--cert-dir="+filepath.Join(dir, "certs"),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", port),
		"--endpoint-reconciler-type=none",
		"--service-account-key-file="+filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC", "--service-cluster-ip-range=10.96.0.0/16",
		"--enable-priority-and-fairness=false")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kube-apiserver: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		logf.Close()
	})

	k.Config = k.RESTConfigForToken(token)
	if k.Client, err = kubernetes.NewForConfig(k.Config); err != nil {
		t.Fatal(err)
	}
	k.Kubeconfig = k.KubeconfigForToken(t, token)

	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		b, err := k.Client.CoreV1().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		cancel()
		if err == nil && string(b) == "ok" {
			return k
		}
		select {
		case <-exited:
			t.Fatalf("kube-apiserver exited before it was ready; log:\n%s", k.LogTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-apiserver at %s not ready after 90s (last: %v); log:\n%s", k.URL, err, k.LogTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// LogTail returns the end of the apiserver's log, for failure messages.
func (k *KubeEnv) LogTail() string { return tailFile(k.log) }

// ControllerManagerLogTail returns the end of kube-controller-manager's log.
func (k *KubeEnv) ControllerManagerLogTail() string {
	return tailFile(filepath.Join(k.dir, "kube-controller-manager.log"))
}

func tailFile(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// RESTConfigForToken is a client configuration authenticating with a bearer token.
func (k *KubeEnv) RESTConfigForToken(token string) *rest.Config {
	return &rest.Config{Host: k.URL, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		Timeout: 15 * time.Second, QPS: 100, Burst: 200}
}

// KubeconfigForToken writes a kubeconfig file authenticating with token and returns its path.
func (k *KubeEnv) KubeconfigForToken(t testing.TB, token string) string {
	t.Helper()
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: test
  user: {token: %q}
contexts:
- name: test
  context: {cluster: test, user: test}
current-context: test
`, k.URL, token)
	f, err := os.CreateTemp(k.dir, "kubeconfig-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(cfg); err != nil {
		t.Fatal(err)
	}
	return f.Name()
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
	logPath := filepath.Join(k.dir, "kube-controller-manager.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
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
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kube-controller-manager: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
