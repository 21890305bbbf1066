package e2e

// Checks the eni e2e tests share (eni_test.go, eni_exclusive_test.go).

import (
	"encoding/json"
	"io"
	"net"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/testenv"
)

// checkPlanPods runs `weft plan` on node n against alisim for e2eENIType and checks that it gives backend
// ("eni", "eni-exclusive") want pods per node: the limit the daemon was just seen to enforce.
func checkPlanPods(t *testing.T, n *lab.Node, backend string, want int) {
	t.Helper()
	out, err := lab.NSRun(n.Name, "env", "VPC_ENDPOINT="+gw+":8900", "ECS_ENDPOINT="+gw+":8900", "ALICLOUD_CLIENT_SCHEME=HTTP",
		testenv.WeftBin(t, "weft"), "plan", "--instance-type-source", "api", "--instance-type", e2eENIType,
		"--vpc-cidr", "192.168.0.0/16", "--vswitch-cidr", "192.168.0.0/24,192.168.1.0/24", "--nodes", "2", "-o", "json")
	var plan struct {
		Backends []struct {
			Backend     string `json:"backend"`
			PodsPerNode int    `json:"podsPerNode"`
		} `json:"backends"`
	}
	if jerr := json.Unmarshal([]byte(out), &plan); jerr != nil {
		t.Fatalf("weft plan: %v %v: %s", err, jerr, out)
	}
	found := false
	for _, b := range plan.Backends {
		if b.Backend == backend {
			found = true
			if b.PodsPerNode != want {
				t.Errorf("weft plan says %d pods per node for %s on %s, the daemon enforces %d", b.PodsPerNode, backend, e2eENIType, want)
			}
		}
	}
	if !found {
		t.Errorf("weft plan has no %s backend: %s", backend, out)
	}
}

// checkServiceDNAT serves "svc\n" in serverNS on listen, DNATs 10.96.0.10:80 to target in node's prerouting with
// an nft table of the given name (as kube-proxy would), and checks that a client in clientNS reads "svc\n" from
// 10.96.0.10:80. The listener and the table go when it returns.
func checkServiceDNAT(t *testing.T, node, table, serverNS, listen, target, clientNS string) {
	t.Helper()
	var ln net.Listener
	if err := lab.InNS(serverNS, func() (err error) { ln, err = net.Listen("tcp", listen); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("svc\n"))
			c.Close()
		}
	}()
	rules := "table ip " + table + " {\n chain pre { type nat hook prerouting priority -100; ip daddr 10.96.0.10 tcp dport 80 dnat to " + target + "; }\n}\n"
	if out, err := lab.NSRun(node, "sh", "-c", "printf '"+rules+"' | nft -f -"); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	defer func() { _, _ = lab.NSRun(node, "nft", "delete", "table", "ip", table) }()
	var got []byte
	if err := lab.InNS(clientNS, func() error {
		c, err := net.DialTimeout("tcp", "10.96.0.10:80", 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		got = make([]byte, 4)
		_, err = io.ReadFull(c, got)
		return err
	}); err != nil || string(got) != "svc\n" {
		t.Fatalf("pod -> Service 10.96.0.10:80 (DNAT to %s): %q %v", target, got, err)
	}
}

// addPodRetrying makes a pod on node n, retrying its ADD while the ENI it will get is still cooling down (a freed
// exclusive or member ENI: at least 30 s).
func (e *eniEnv) addPodRetrying(t *testing.T, n *lab.Node, name string) *eniPod {
	t.Helper()
	if err := e.createPod(n, name); err != nil {
		t.Fatal(err)
	}
	var p *eniPod
	if err := lab.WaitFor(120*time.Second, "pod "+name, func() (bool, error) {
		var err error
		if p, err = e.sandbox(n, name); err != nil {
			return false, err
		}
		if err := e.add(p); err != nil {
			t.Logf("ADD %s: %v (retrying)", name, err)
			e.dropSandbox(p)
			return false, nil
		}
		return true, nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, tailN(n.Daemon.Logs(), 30))
	}
	e.mu.Lock()
	e.pods[name] = p
	e.mu.Unlock()
	return p
}
