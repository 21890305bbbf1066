package cniwait

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var errGone = errors.New("no such pod in the API")

func serve(t *testing.T, ensure Ensure) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	s := &Server{Ensure: ensure, Unknown: func(err error) bool { return errors.Is(err, errGone) }, Timeout: time.Second}
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return path
}

func TestWait(t *testing.T) {
	ip := []netip.Addr{netip.MustParseAddr("10.244.0.5")}
	var got Request
	path := serve(t, func(ctx context.Context, ns, name string, ips []netip.Addr) error {
		got = Request{ns, name, ips}
		switch name {
		case "gone":
			return errGone
		case "slow":
			<-ctx.Done()
			return errors.New("network policy: pod default/slow's rules are not in the kernel yet: " + ctx.Err().Error())
		}
		return nil
	})
	ctx := context.Background()
	if err := Wait(ctx, path, Request{"default", "web-0", ip}); err != nil || got.Name != "web-0" || got.IPs[0] != ip[0] {
		t.Fatalf("wait: %v, server saw %+v", err, got)
	}
	if err := Wait(ctx, path, Request{"default", "gone", ip}); err != nil {
		t.Errorf("a pod the API does not know: %v, want no policy and nil", err)
	}
	if err := Wait(ctx, path, Request{"default", "slow", ip}); err == nil || !strings.Contains(err.Error(), "weftd: network policy: pod default/slow's rules are not in the kernel yet") {
		t.Errorf("slow engine: %v", err)
	}
	if err := Wait(ctx, path, Request{"", "x", ip}); err == nil || !strings.Contains(err.Error(), `namespace "": expected 1..63 characters`) {
		t.Errorf("empty namespace: %v", err)
	}
	if err := Wait(ctx, path, Request{"default", "x", nil}); err == nil || !strings.Contains(err.Error(), "ips: 0 addresses, expected 1 or 2") {
		t.Errorf("no address: %v", err)
	}
	// The server checks for itself: a hostile body.
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return net.Dial("unix", path) }}}
	for body, want := range map[string]string{
		strings.Repeat("x", 10000):                                              "request: ",
		`{"namespace":"a","name":"b","ips":["10.0.0.1"],"x":1}`:                 `unknown field "x"`,
		`{"namespace":"a","name":"b","ips":["300.0.0.1"]}`:                      "request: ",
		`{"namespace":"a","name":"b","ips":["10.0.0.1","10.0.0.2","10.0.0.3"]}`: "ips: 3 addresses",
	} {
		resp, err := c.Post("http://weftd/v1/pod", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 512)
		n, _ := resp.Body.Read(buf)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(buf[:n]), want) {
			t.Errorf("body %.40q: %d %q, want 400 with %q", body, resp.StatusCode, buf[:n], want)
		}
	}
}

func TestWaitNoEngine(t *testing.T) {
	ip := []netip.Addr{netip.MustParseAddr("10.244.0.5")}
	if err := Wait(context.Background(), filepath.Join(t.TempDir(), "policy.sock"), Request{"default", "a", ip}); err != nil {
		t.Errorf("no socket file: %v, want nil (no engine on this node)", err)
	}
	// A socket file nobody listens on (weftd stopped): the ADD fails.
	path := filepath.Join(t.TempDir(), "policy.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	err = Wait(context.Background(), path, Request{"default", "a", ip})
	if err == nil || !strings.Contains(err.Error(), "does not answer (is weftd running?)") {
		t.Errorf("a stale socket: %v", err)
	}
}

func TestSocketPath(t *testing.T) {
	if p := SocketPath("/run/flannel/subnet.env"); p != "/run/flannel/policy.sock" {
		t.Error(p)
	}
}

// The socket is active while it is not older than subnet.env: a daemon that wrote subnet.env after weftd (upstream
// flanneld back on the node) makes it stale.
func TestActive(t *testing.T) {
	dir := t.TempDir()
	sock, env := filepath.Join(dir, "policy.sock"), filepath.Join(dir, "subnet.env")
	if Active(sock, env) {
		t.Error("no socket: active")
	}
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if !Active(sock, env) {
		t.Error("a socket and no subnet.env: not active")
	}
	if err := os.WriteFile(env, []byte("FLANNEL_MTU=1450\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Second)
	if err := os.Chtimes(env, later, later); err != nil {
		t.Fatal(err)
	}
	if Active(sock, env) {
		t.Error("subnet.env newer than the socket: active")
	}
	if err := Touch(sock); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(env, time.Now().Add(-time.Second), time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if !Active(sock, env) {
		t.Error("touched after subnet.env: not active")
	}
}
