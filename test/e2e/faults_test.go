package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/testenv"
)

// notReady waits until the daemon's log names want and checks /readyz is 503 with a reason, and that no
// subnet.env was written.
func notReady(t *testing.T, n *lab.Node, port int, want string) {
	t.Helper()
	var code int
	var body string
	if err := lab.WaitFor(20*time.Second, "/readyz names "+want, func() (bool, error) {
		var err error
		code, body, err = n.Readyz(port)
		return code == 503 && strings.Contains(body, want), err
	}); err != nil {
		t.Fatalf("%v (last: %d %q)\nlog:\n%s", err, code, body, tailN(n.Daemon.Logs(), 20))
	}
	if !strings.Contains(n.Daemon.Logs(), "retrying in") {
		t.Errorf("log does not show the retry:\n%s", tailN(n.Daemon.Logs(), 20))
	}
	if _, err := os.Stat(n.SubnetFile()); err == nil {
		t.Errorf("subnet.env written although not ready")
	}
	if n.Daemon.Exited() {
		t.Errorf("daemon exited instead of retrying")
	}
}

func TestFaultsEtcdMode(t *testing.T) {
	e := newEnv(t, 2)
	n := e.lab.Nodes[0]

	// No config yet: upstream's message, retried; a malformed one names the field; fixing it converges.
	if _, err := n.StartDaemon(lab.DaemonOptions{Binary: e.weftd, HealthPort: 10260}); err != nil {
		t.Fatal(err)
	}
	notReady(t, n, 10260, "flannel config not found in etcd store")
	if err := e.lab.PutNetConfig(`{"Network":"10.244.0.0/16","SubnetLen":31}`); err != nil {
		t.Fatal(err)
	}
	notReady(t, n, 10260, "SubnetLen: must be less than /31")
	if err := e.lab.PutNetConfig(fmt.Sprintf(netV4, "vxlan")); err != nil {
		t.Fatal(err)
	}
	if _, err := n.WaitSubnetEnv(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := lab.WaitFor(10*time.Second, "ready", func() (bool, error) {
		code, _, err := n.Readyz(10260)
		return code == 200, err
	}); err != nil {
		t.Fatal(err)
	}
	_, metrics, _ := lab.HTTPGet(n.Name, "http://127.0.0.1:10260/metrics")
	for _, m := range []string{"weft_ready 1", `weft_build_info{`, `weft_reconcile_duration_seconds_count{backend="vxlan"}`} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	t.Run("revoked lease is re-acquired", func(t *testing.T) {
		sn := strings.Replace(n.EnvValue("FLANNEL_SUBNET"), ".1/", ".0-", 1)
		key := "/coreos.com/network/subnets/" + sn
		if _, err := e.lab.Etcdctl("del", key); err != nil {
			t.Fatal(err)
		}
		if err := lab.WaitFor(20*time.Second, "lease back", func() (bool, error) {
			out, err := e.lab.Etcdctl("get", key)
			return strings.Contains(out, n.Addr), err
		}); err != nil {
			t.Fatalf("%v\n%s", err, tailN(n.Daemon.Logs(), 10))
		}
		if n.Daemon.Exited() || !strings.Contains(n.Daemon.Logs(), "re-acquired") {
			t.Fatalf("weftd did not re-acquire its lease:\n%s", tailN(n.Daemon.Logs(), 10))
		}
	})

	t.Run("unreachable etcd", func(t *testing.T) {
		m := e.lab.Nodes[1]
		if _, err := m.StartDaemon(lab.DaemonOptions{Binary: e.weftd, HealthPort: 10261,
			Extra: []string{"--etcd-endpoints=http://10.250.0.1:2999"}}); err != nil {
			t.Fatal(err)
		}
		notReady(t, m, 10261, "10.250.0.1:2999")
	})
}

func TestFaultsKubeMode(t *testing.T) {
	testenv.Bin(t, "kube-apiserver")
	e := newEnv(t, 2)
	k, err := e.lab.StartKube()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n := e.lab.Nodes[0]
	// A Node without annotations at all (upstream panics) and without a podCIDR yet.
	if _, err := k.Client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.StartDaemon(lab.DaemonOptions{Binary: e.weftd, Kube: k, NetConf: fmt.Sprintf(netV4, "vxlan"), HealthPort: 10262}); err != nil {
		t.Fatal(err)
	}
	notReady(t, n, 10262, fmt.Sprintf("node %q pod cidr not assigned", n.Name))
	node, _ := k.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	node.Spec.PodCIDR, node.Spec.PodCIDRs = "10.99.1.0/24", []string{"10.99.1.0/24"}
	if _, err := k.Client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	notReady(t, n, 10262, "is not inside Network 10.244.0.0/16")

	t.Run("malformed net-conf.json exits naming the problem", func(t *testing.T) {
		m := e.lab.Nodes[1]
		p, err := m.StartDaemon(lab.DaemonOptions{Binary: e.weftd, Kube: k, NetConf: `{"Network":"10.244.0.0"}`})
		if err != nil {
			t.Fatal(err)
		}
		if err := lab.WaitFor(20*time.Second, "exit", func() (bool, error) { return p.Exited(), nil }); err != nil {
			t.Fatal(err)
		}
		if p.Cmd.ProcessState.ExitCode() != 1 || !strings.Contains(p.Logs(), `Network: "10.244.0.0" is not an IPv4 CIDR`) ||
			!strings.Contains(p.Logs(), filepath.Join(m.Dir, "net-conf.json")) {
			t.Errorf("exit %d, log:\n%s", p.Cmd.ProcessState.ExitCode(), p.Logs())
		}
		if len(m.IP("link", "show", "flannel.1")) > 0 && !strings.Contains(m.IP("link", "show", "flannel.1"), "does not exist") {
			t.Errorf("flannel.1 created although the config was rejected")
		}
	})

	t.Run("unreachable API server", func(t *testing.T) {
		m := e.lab.Nodes[1]
		bad := filepath.Join(m.Dir, "bad-kubeconfig")
		if err := os.WriteFile(bad, []byte(lab.KubeconfigFor("https://10.250.0.1:6999", "x")), 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := m.StartDaemon(lab.DaemonOptions{Binary: e.weftd, Kube: &lab.Kube{Kubeconfig: bad}, NetConf: fmt.Sprintf(netV4, "vxlan"),
			HealthPort: 10263})
		if err != nil {
			t.Fatal(err)
		}
		_ = p
		notReady(t, m, 10263, "10.250.0.1:6999")
	})
}
