package testenv

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"github.com/weftnet/weft/internal/services"
)

// StartEtcd starts a real etcd on free loopback ports with a fresh data directory and returns its client URL.
// It is stopped when the test ends.
func StartEtcd(t testing.TB) string {
	t.Helper()
	return StartEtcdOn(t, "127.0.0.1")
}

// StartEtcdOn is StartEtcd listening on host (which must be an address of the current network namespace).
func StartEtcdOn(t testing.TB, host string) string {
	t.Helper()
	bin := Bin(t, "etcd")
	dir := t.TempDir()
	client, peer := freePort(t, host), freePort(t, host)
	for peer == client {
		peer = freePort(t, host)
	}
	e, err := services.StartEtcd(context.Background(), launcher{t}, services.EtcdOptions{Bin: bin, Name: "test",
		DataDir: filepath.Join(dir, "data"), Log: filepath.Join(dir, "etcd.log"), Host: host,
		ClientPort: client, PeerPort: peer})
	if err != nil {
		t.Fatal(err)
	}
	return e.URL
}

func freePort(t testing.TB, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
