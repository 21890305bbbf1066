package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/testenv"
)

// An operator who puts Backend.Type eni into etcd (the eni backend reads pods from the Kubernetes API, which etcd
// mode has not) gets weftd exiting 1 with an error that names Kubernetes mode, as soon as the config is read:
// not an error about something else it need not have looked at (the external interface: eni does not use it;
// here --iface names none), not a retry loop, and nothing left behind (no lease, no subnet.env, no rules).
func TestENIInEtcdModeExits1NamingKubernetesMode(t *testing.T) {
	testenv.RequireRoot(t)
	tools := testenv.ToolsDir(t)
	testenv.Bin(t, "etcd")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	l, err := lab.New(lab.Options{Nodes: 1, Dir: t.TempDir(), ToolsBin: tools})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Down)
	if err := l.StartEtcd(); err != nil {
		t.Fatal(err)
	}
	if err := l.PutNetConfig(`{"Backend":{"Type":"eni","vswitches":{"cn-hangzhou-h":["vsw-1"]},"security_group":"sg-1"}}`); err != nil {
		t.Fatal(err)
	}
	n := l.Nodes[0]
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := l.Start(n.Name, filepath.Join(n.Dir, "weftd.log"), []string{"WEFT_SEAM_DAEMON=1"}, self,
		"--iface=no-such-if0", "--subnet-file="+n.SubnetFile(), "--ip-masq", "--etcd-endpoints="+l.EtcdURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	if err := lab.WaitFor(30*time.Second, "weftd to exit", func() (bool, error) { return p.Exited(), nil }); err != nil {
		t.Fatalf("%v\n%s", err, p.Logs())
	}
	log := p.Logs()
	if code := p.Cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit code %d, want 1\n%s", code, log)
	}
	if !strings.Contains(log, "Kubernetes mode") || !strings.Contains(log, "--kube-subnet-mgr") {
		t.Errorf("the log does not name Kubernetes mode (--kube-subnet-mgr):\n%s", log)
	}
	if strings.Contains(log, "external interface") || strings.Contains(log, "Link not found") {
		t.Errorf("weftd looked at the external interface, which the eni backend does not use:\n%s", log)
	}
	if _, err := os.Stat(n.SubnetFile()); !os.IsNotExist(err) {
		t.Errorf("subnet.env exists (%v)", err)
	}
	if out, err := l.Etcdctl("get", "--prefix", "--keys-only", "/coreos.com/network/subnets/"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("leases in etcd %q (%v)", out, err)
	}
	checkChain(t, n.Name, "nat", "FLANNEL-POSTRTG", nil)
}
