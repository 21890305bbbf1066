package e2e

// The NetworkPolicy world on ali-vpc: alisim's fabric (a VPC router namespace, one namespace per instance),
// kube-apiserver inside the VPC, weftd (ali-vpc, Kubernetes mode) on two instances; cross-node pod traffic takes
// the VPC's route table.

import (
	"fmt"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
)

const npVPCHealthPort = 10550

func newNPWorldVPC(t *testing.T) *npWorld {
	t.Helper()
	e := newVPCEnv(t, 2, 5)
	k, saConfig := e.startAPIServer()
	e.startKubeNodes(k, saConfig, fmt.Sprintf(vpcConf, 5), npVPCHealthPort)
	for i, n := range e.nodes {
		if _, err := n.WaitSubnetEnv(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		if err := lab.WaitFor(60*time.Second, n.Name+" ready (route Available, policy informers synced)", func() (bool, error) {
			code, _ := readyz(n, npVPCHealthPort+i)
			return code == 200, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return populateNPWorld(t, k.Client, e.nodes, e.plugin)
}
