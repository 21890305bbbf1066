package cni

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/weftnet/weft/internal/policy/cniwait"
)

// ADD waits for weftd's policy engine when it runs (its socket beside subnet.env) and undoes the delegate when
// the engine refuses; without an engine, or for a runtime that names no pod, it does not wait.
func TestAddWaitsForPolicy(t *testing.T) {
	f := &fakeDelegate{}
	f.install(t)
	delegateAdd = func(context.Context, string, []byte, invoke.Exec) (types.Result, error) {
		return &current.Result{CNIVersion: "1.0.0", IPs: []*current.IPConfig{{Address: net.IPNet{IP: net.IPv4(10, 244, 1, 7), Mask: net.CIDRMask(24, 32)}}}}, nil
	}
	conf, dataDir := pluginConf(t)
	pod := "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0"
	if err := Add(&skel.CmdArgs{ContainerID: "c1", StdinData: conf, Args: pod}); err != nil {
		t.Fatalf("no engine on the node: %v", err)
	}

	var n NetConf
	n.SubnetFile = filepath.Join(filepath.Dir(dataDir), "subnet.env")
	sock := cniwait.SocketPath(n.SubnetFile)
	var seen []cniwait.Request
	refuse := false
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := &cniwait.Server{Ensure: func(_ context.Context, ns, name string, ips []netip.Addr) error {
		seen = append(seen, cniwait.Request{Namespace: ns, Name: name, IPs: ips})
		if refuse {
			return errors.New("network policy: the last sync failed: nft: Operation not permitted")
		}
		return nil
	}}
	l, err := cniwait.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := Add(&skel.CmdArgs{ContainerID: "c2", StdinData: conf, Args: pod}); err != nil || len(seen) != 1 ||
		seen[0].Name != "web-0" || seen[0].IPs[0] != netip.MustParseAddr("10.244.1.7") {
		t.Fatalf("ADD with an engine: %v, engine saw %+v", err, seen)
	}
	if err := Add(&skel.CmdArgs{ContainerID: "c3", StdinData: conf, Args: "IgnoreUnknown=1"}); err != nil || len(seen) != 1 {
		t.Fatalf("ADD of no Kubernetes pod: %v (engine asked %d times)", err, len(seen))
	}
	refuse = true
	err = Add(&skel.CmdArgs{ContainerID: "c4", StdinData: conf, Args: pod})
	if err == nil || !strings.Contains(err.Error(), "Operation not permitted") {
		t.Fatalf("ADD the engine refuses: %v", err)
	}
	if len(f.dels) != 1 {
		t.Errorf("the refused ADD's delegate was undone %d times, want once", len(f.dels))
	}
	if _, err := os.Stat(filepath.Join(dataDir, "c4")); !os.IsNotExist(err) {
		t.Errorf("the refused ADD left its state: %v", err)
	}
}
