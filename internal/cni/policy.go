package cni

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/weftnet/weft/internal/policy/cniwait"
)

// policyWait bounds how long ADD waits for weftd to put the pod's NetworkPolicy rules in place.
var policyWait = 60 * time.Second

// waitPolicy returns once weftd's policy engine (its socket beside the subnet file) has the new pod's rules in
// the kernel; at once when there is no engine on the node (no socket, or one older than subnet.env: see
// cniwait.Active) or the runtime named no Kubernetes pod (CNI_ARGS K8S_POD_NAMESPACE / K8S_POD_NAME).
func waitPolicy(cniArgs string, n *NetConf, res types.Result) error {
	ns, name := podArgs(cniArgs)
	sock := cniwait.SocketPath(n.SubnetFile)
	if ns == "" || name == "" || !cniwait.Active(sock, n.SubnetFile) {
		return nil
	}
	r, err := current.NewResultFromResult(res)
	if err != nil {
		return fmt.Errorf("network policy: the delegate's result: %w", err)
	}
	var ips []netip.Addr
	for _, ip := range r.IPs {
		if a, ok := netip.AddrFromSlice(ip.Address.IP); ok {
			ips = append(ips, a.Unmap())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), policyWait)
	defer cancel()
	return cniwait.Wait(ctx, sock, cniwait.Request{Namespace: ns, Name: name, IPs: ips})
}

// podArgs reads the pod's namespace and name from CNI_ARGS ("K=V;K=V").
func podArgs(s string) (ns, name string) {
	for _, kv := range strings.Split(s, ";") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "K8S_POD_NAMESPACE":
			ns = v
		case "K8S_POD_NAME":
			name = v
		}
	}
	return ns, name
}
