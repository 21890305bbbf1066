package services

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// APIServerOptions describe a kube-apiserver backed by an etcd already running.
type APIServerOptions struct {
	Bin     string // the kube-apiserver binary
	Dir     string // holds its keys, token file, serving certificate and the admin kubeconfig
	Log     string // file receiving its output
	EtcdURL string
	Host    string // address it binds and advertises, in the namespace the Launcher runs it in
	Port    int
	Dial    DialFunc      // how this process reaches Host (nil: directly)
	Timeout time.Duration // how long to wait for /readyz (default 90 s)
}

// APIServer is a started kube-apiserver with RBAC authorization, a static admin token (system:masters) and a
// ServiceAccount token signer, so clients can be given exactly the rights a manifest grants.
type APIServer struct {
	URL        string // https://Host:Port; the serving certificate is self-signed
	Token      string // the admin bearer token
	Kubeconfig string // path of an admin kubeconfig
	Config     *rest.Config
	Client     kubernetes.Interface
	Proc       Proc

	dial DialFunc
}

// StartAPIServer writes the API server's credentials into o.Dir, launches it and waits until /readyz answers ok.
func StartAPIServer(ctx context.Context, l Launcher, o APIServerOptions) (*APIServer, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.Timeout == 0 {
		o.Timeout = 90 * time.Second
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	token, err := writeCredentials(o.Dir)
	if err != nil {
		return nil, err
	}
	a := &APIServer{URL: "https://" + net.JoinHostPort(o.Host, strconv.Itoa(o.Port)), Token: token,
		Kubeconfig: filepath.Join(o.Dir, "kubeconfig"), dial: o.Dial}
	if err := os.WriteFile(a.Kubeconfig, []byte(Kubeconfig(a.URL, token)), 0o600); err != nil {
		return nil, err
	}
	a.Config = a.RESTConfigForToken(token)
	if a.Client, err = kubernetes.NewForConfig(a.Config); err != nil {
		return nil, err
	}
	args := []string{
		"--etcd-servers=" + o.EtcdURL, "--cert-dir=" + filepath.Join(o.Dir, "certs"),
		"--bind-address=" + o.Host, "--advertise-address=" + o.Host, "--secure-port=" + strconv.Itoa(o.Port),
		"--service-account-key-file=" + filepath.Join(o.Dir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(o.Dir, "sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--token-auth-file=" + filepath.Join(o.Dir, "tokens.csv"),
		"--authorization-mode=RBAC", "--service-cluster-ip-range=10.96.0.0/16",
		"--enable-priority-and-fairness=false",
	}
	if ip := net.ParseIP(o.Host); ip != nil && ip.IsLoopback() {
		// The default endpoint reconciler refuses a loopback advertise address.
		args = append(args, "--endpoint-reconciler-type=none")
	}
	if a.Proc, err = l.Launch(o.Log, o.Bin, args...); err != nil {
		return nil, fmt.Errorf("start kube-apiserver: %w", err)
	}
	err = poll(ctx, "kube-apiserver at "+a.URL, o.Timeout, a.Proc, o.Log, func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		b, err := a.Client.CoreV1().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return false, err
		}
		if string(b) != "ok" {
			return false, fmt.Errorf("/readyz answered %q", b)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// RESTConfigForToken is a client configuration authenticating with a bearer token.
func (a *APIServer) RESTConfigForToken(token string) *rest.Config {
	return &rest.Config{Host: a.URL, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		Dial: a.dial, Timeout: 15 * time.Second, QPS: 100, Burst: 200}
}

// Kubeconfig renders a kubeconfig for url with a bearer token (TLS verification off: the serving certificate is
// self-signed).
func Kubeconfig(url, token string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: weft
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: weft
  user: {token: %q}
contexts:
- name: weft
  context: {cluster: weft, user: weft}
current-context: weft
`, url, token)
}

// writeCredentials writes the ServiceAccount signing key pair and a token file naming one fresh admin token,
// which it returns.
func writeCredentials(dir string) (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := "weft-admin-" + hex.EncodeToString(b)
	files := map[string][]byte{
		"sa.key":     pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"sa.pub":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
		"tokens.csv": []byte(token + ",admin,admin-uid,system:masters\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return "", err
		}
	}
	return token, nil
}

func (o APIServerOptions) check() error {
	var errs []error
	for _, f := range []struct{ name, v string }{{"Bin", o.Bin}, {"Dir", o.Dir}, {"Log", o.Log}, {"EtcdURL", o.EtcdURL}, {"Host", o.Host}} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("kube-apiserver: %s is empty", f.name))
		}
	}
	if o.Port <= 0 {
		errs = append(errs, fmt.Errorf("kube-apiserver: Port %d, want a port", o.Port))
	}
	return errors.Join(errs...)
}
