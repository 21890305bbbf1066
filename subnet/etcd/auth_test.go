package etcd

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weftnet/weft/internal/testenv"
)

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// With --etcd-username set, clientv3.New used to authenticate before returning, so an unreachable etcd made New
// fail and weftd exit 1 instead of retrying. New must not wait for etcd: the first calls fail instead, and the
// daemon's retried step reports them.
func TestNewWithAuthDoesNotWaitForEtcd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, err := New(ctx, Options{Endpoints: []string{"http://" + closedPort(t)}, Username: "root", Password: "pw"})
	if err != nil {
		t.Fatalf("New with an unreachable etcd and a user name: %v, want a client that fails its calls instead", err)
	}
	cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
	defer ccancel()
	if _, err := m.GetNetworkConfig(cctx); err == nil {
		t.Fatal("GetNetworkConfig from an unreachable etcd succeeded")
	}
}

// Endpoint URLs lose their userinfo before they reach the etcd client (whose logs and errors would quote it).
func TestEndpointCredentialsNeverReachTheClient(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := closedPort(t)
	m, err := New(ctx, Options{Endpoints: []string{"http://bob:urlsecret@" + addr}})
	if err != nil {
		t.Fatal(err)
	}
	if eps := m.Client().Endpoints(); len(eps) != 1 || eps[0] != "http://"+addr {
		t.Fatalf("client endpoints %v, want http://%s", eps, addr)
	}
	cctx, ccancel := context.WithTimeout(ctx, time.Second)
	defer ccancel()
	if _, err := m.GetNetworkConfig(cctx); err == nil || strings.Contains(err.Error(), "urlsecret") {
		t.Fatalf("error %v", err)
	}
}

// forwarder accepts on addr once started and copies bytes to target: an etcd that "appears" at an address the
// manager was given before.
func forwarder(t *testing.T, addr, target string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(u, c); u.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
}

// Against an etcd with authentication on: the manager built while etcd was unreachable works once it appears,
// a watch works, a wrong password is refused with etcd's reason, and a token the server drops is fetched again.
func TestAuthDeferredUntilEtcdAppears(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	ep := testenv.StartEtcd(t)
	admin, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	bg := context.Background()
	if _, err := admin.Put(bg, "/coreos.com/network/config", `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.UserAdd(bg, "root", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.UserGrantRole(bg, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AuthEnable(bg); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	addr := closedPort(t)
	m, err := New(ctx, Options{Endpoints: []string{"http://" + addr}, Username: "root", Password: "pw"})
	if err != nil {
		t.Fatalf("New before etcd is reachable: %v", err)
	}
	cctx, ccancel := context.WithTimeout(ctx, time.Second)
	_, err = m.GetNetworkConfig(cctx)
	ccancel()
	if err == nil {
		t.Fatal("read through a closed port succeeded")
	}
	forwarder(t, addr, strings.TrimPrefix(ep, "http://"))
	var cfgErr error
	for i := 0; i < 100; i++ { // the client redials with backoff
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		_, cfgErr = m.GetNetworkConfig(cctx)
		ccancel()
		if cfgErr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if cfgErr != nil {
		t.Fatalf("config once etcd is reachable: %v", cfgErr)
	}
	// A watch carries the token too.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wch := m.Client().Watch(wctx, "/coreos.com/network/x")
	rootCli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, Username: "root", Password: "pw", DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rootCli.Close()
	if _, err := rootCli.Put(bg, "/coreos.com/network/x", "1"); err != nil {
		t.Fatal(err)
	}
	select {
	case wr := <-wch:
		if wr.Err() != nil || len(wr.Events) != 1 {
			t.Fatalf("watch: %v %v", wr.Err(), wr.Events)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no watch event")
	}
	// The token is dropped by the server (here: the client's is replaced by a bogus one): the next call
	// authenticates again instead of failing for ever.
	a := tokenOf(t, m)
	a.mu.Lock()
	a.token = "bogus.token"
	a.mu.Unlock()
	cctx, ccancel = context.WithTimeout(ctx, 10*time.Second)
	_, err = m.GetNetworkConfig(cctx)
	ccancel()
	if err != nil {
		// One call may see the refusal; the one after must succeed.
		cctx, ccancel = context.WithTimeout(ctx, 10*time.Second)
		_, err = m.GetNetworkConfig(cctx)
		ccancel()
	}
	a.mu.Lock()
	tok := a.token
	a.mu.Unlock()
	if err != nil || tok == "bogus.token" || tok == "" {
		t.Fatalf("after the token was refused: %v (token %q), want a fresh token", err, tok)
	}

	bad, err := New(ctx, Options{Endpoints: []string{ep}, Username: "root", Password: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel = context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	if _, err := bad.GetNetworkConfig(cctx); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("wrong password: %v, want etcd's authentication failure", err)
	}
}

func tokenOf(t *testing.T, m *Manager) *tokenAuth {
	t.Helper()
	if m.auth == nil {
		t.Fatal("no token auth on a manager with a user name and password")
	}
	return m.auth
}

// A call stuck authenticating against an unreachable etcd (a watch, without a deadline) does not hold up a call
// with a deadline: that one fails at its deadline, so the daemon's retried step can report the outage.
func TestAuthWaitHonoursTheCallersDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, err := New(ctx, Options{Endpoints: []string{"http://" + closedPort(t)}, Username: "root", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	a := tokenOf(t, m)
	// The stuck fetch lasts until the end of the test, so waiting it out would hang the test.
	defer func(d time.Duration) { authTimeout = d }(authTimeout)
	authTimeout = time.Hour
	stuck := make(chan error, 1)
	go func() { _, err := a.GetRequestMetadata(ctx); stuck <- err }()
	for len(a.fetching) == 0 { // until the first call is authenticating
		time.Sleep(10 * time.Millisecond)
	}
	dctx, dcancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer dcancel()
	// Its own deadline, not the stuck fetch's outcome (which it would only see after waiting it out).
	if _, err := a.GetRequestMetadata(dctx); err != context.DeadlineExceeded {
		t.Fatalf("second call: %v, want its own deadline", err)
	}
	cancel()
	if err := <-stuck; err == nil {
		t.Fatal("the stuck call got a token")
	}
	m.Close()
}
