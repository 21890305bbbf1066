package lab

import (
	"context"
	"path/filepath"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/weftnet/weft/internal/services"
)

// nsLauncher runs the services' programs inside one of the lab's namespaces, as processes the lab stops in Down.
type nsLauncher struct {
	l  *Lab
	ns string
}

func (n nsLauncher) Launch(logPath, prog string, args ...string) (services.Proc, error) {
	return n.l.Start(n.ns, logPath, nil, prog, args...)
}

// StartEtcd runs etcd in the underlay namespace on the service address (ServiceIP, default UnderlayIP), port
// 2379, and waits until it is healthy.
func (l *Lab) StartEtcd() error {
	e, err := services.StartEtcd(context.Background(), nsLauncher{l, l.Underlay}, services.EtcdOptions{
		Bin: filepath.Join(l.O.ToolsBin, "etcd"), Name: "lab", DataDir: filepath.Join(l.O.Dir, "etcd"),
		Log: filepath.Join(l.O.Dir, "etcd.log"), Host: l.serviceIP(), ClientPort: 2379, PeerPort: 2380,
		Dial: DialerIn(l.Underlay)})
	if err != nil {
		return err
	}
	l.EtcdURL = e.URL
	return nil
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

// StartKube runs kube-apiserver (needs StartEtcd first) on the service address, port 6443, and returns an admin
// client that dials into the underlay namespace.
func (l *Lab) StartKube() (*Kube, error) {
	a, err := services.StartAPIServer(context.Background(), nsLauncher{l, l.Underlay}, services.APIServerOptions{
		Bin: filepath.Join(l.O.ToolsBin, "kube-apiserver"), Dir: filepath.Join(l.O.Dir, "kube"),
		Log: filepath.Join(l.O.Dir, "kube-apiserver.log"), EtcdURL: l.EtcdURL, Host: l.serviceIP(), Port: 6443,
		Dial: DialerIn(l.Underlay)})
	if err != nil {
		return nil, err
	}
	return &Kube{URL: a.URL, Kubeconfig: a.Kubeconfig, Token: a.Token, Client: a.Client, Config: a.Config}, nil
}

// KubeconfigFor renders a kubeconfig with a bearer token (TLS verification off: the lab's serving cert is
// self-signed).
func KubeconfigFor(url, token string) string { return services.Kubeconfig(url, token) }

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

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}
