package lab

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// StartEtcd runs etcd in the underlay namespace on UnderlayIP:2379 and waits until it is healthy.
func (l *Lab) StartEtcd() error {
	dir := filepath.Join(l.O.Dir, "etcd")
	url := "http://" + UnderlayIP + ":2379"
	p, err := l.Start(l.Underlay, filepath.Join(l.O.Dir, "etcd.log"), nil, filepath.Join(l.O.ToolsBin, "etcd"),
		"--name", "lab", "--data-dir", dir, "--listen-client-urls", url, "--advertise-client-urls", url,
		"--listen-peer-urls", "http://"+UnderlayIP+":2380", "--initial-advertise-peer-urls", "http://"+UnderlayIP+":2380",
		"--initial-cluster", "lab=http://"+UnderlayIP+":2380", "--log-level", "warn")
	if err != nil {
		return err
	}
	l.EtcdURL = url
	return WaitFor(30*time.Second, "etcd healthy", func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("etcd exited: %s", p.Logs())
		}
		code, _, err := HTTPGet(l.Underlay, url+"/health")
		return code == 200, err
	})
}

// Etcdctl runs etcdctl against the lab's etcd.
func (l *Lab) Etcdctl(args ...string) (string, error) {
	return NSRun(l.Underlay, append([]string{filepath.Join(l.O.ToolsBin, "etcdctl"), "--endpoints=" + l.EtcdURL}, args...)...)
}

// PutNetConfig stores net-conf.json at the default etcd prefix.
func (l *Lab) PutNetConfig(conf string) error {
	_, err := l.Etcdctl("put", "/coreos.com/network/config", conf)
	return err
}

// Kube is a kube-apiserver running in the underlay namespace.
type Kube struct {
	URL        string
	Kubeconfig string
	Token      string
	Client     kubernetes.Interface
	Config     *rest.Config
}

// StartKube runs kube-apiserver (needs StartEtcd first) bound to UnderlayIP:6443 and returns an admin client
// that dials into the underlay namespace.
func (l *Lab) StartKube() (*Kube, error) {
	dir := filepath.Join(l.O.Dir, "kube")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	token := "weft-lab-admin-" + randID()
	files := map[string][]byte{"sa.key": priv, "sa.pub": pub, "tokens.csv": []byte(token + ",admin,admin-uid,system:masters\n")}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	url := "https://" + l.serviceIP() + ":6443"
	p, err := l.Start(l.Underlay, filepath.Join(l.O.Dir, "kube-apiserver.log"), nil, filepath.Join(l.O.ToolsBin, "kube-apiserver"),
		"--etcd-servers="+l.EtcdURL, "--cert-dir="+filepath.Join(dir, "certs"), "--bind-address="+l.serviceIP(),
		"--advertise-address="+l.serviceIP(), "--secure-port=6443",
		"--service-account-key-file="+filepath.Join(dir, "sa.pub"), "--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc", "--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC", "--service-cluster-ip-range=10.96.0.0/16", "--enable-priority-and-fairness=false")
	if err != nil {
		return nil, err
	}
	k := &Kube{URL: url, Token: token, Kubeconfig: filepath.Join(dir, "kubeconfig")}
	if err := os.WriteFile(k.Kubeconfig, []byte(KubeconfigFor(url, token)), 0o600); err != nil {
		return nil, err
	}
	k.Config = &rest.Config{Host: url, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		Dial: DialerIn(l.Underlay), Timeout: 10 * time.Second}
	if k.Client, err = kubernetes.NewForConfig(k.Config); err != nil {
		return nil, err
	}
	err = WaitFor(90*time.Second, "kube-apiserver ready", func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("kube-apiserver exited: %s", tail(p.Logs()))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		b, err := k.Client.CoreV1().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(b) == "ok", err
	})
	return k, err
}

// KubeconfigFor renders a kubeconfig with a bearer token (TLS verification off: the lab's serving cert is
// self-signed).
func KubeconfigFor(url, token string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- cluster: {server: %q, insecure-skip-tls-verify: true}
  name: lab
users:
- name: lab
  user: {token: %q}
contexts:
- context: {cluster: lab, user: lab}
  name: lab
current-context: lab
`, url, token)
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}

// EtcdPID is the pid of the lab's etcd (0 when not started).
func (l *Lab) EtcdPID() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.procs {
		if p.Name == "etcd" {
			return p.Cmd.Process.Pid
		}
	}
	return 0
}
