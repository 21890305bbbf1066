package cniproto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testHandler records what it was asked and answers what the test sets; block, when set, holds a call until the
// channel is closed (or the call's context ends, if honour).
type testHandler struct {
	mu      sync.Mutex
	calls   []string
	adds    []AddRequest
	dels    []DelRequest
	checks  []CheckRequest
	gcs     []GCRequest
	reply   AddReply
	err     error
	block   chan struct{}
	started chan string // receives the verb of each call as it starts, when set
	honour  bool
	sawDL   time.Duration // the deadline left when the last call started
	panicOn string
}

func (h *testHandler) enter(ctx context.Context, verb string) error {
	h.mu.Lock()
	h.calls = append(h.calls, verb)
	if dl, ok := ctx.Deadline(); ok {
		h.sawDL = time.Until(dl)
	}
	block, started, honour, p := h.block, h.started, h.honour, h.panicOn
	h.mu.Unlock()
	if started != nil {
		started <- verb
	}
	if p == verb {
		panic("test panic in " + verb)
	}
	if block != nil {
		if honour {
			select {
			case <-block:
			case <-ctx.Done():
				return ctx.Err()
			}
		} else {
			<-block
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

func (h *testHandler) Add(ctx context.Context, r AddRequest) (AddReply, error) {
	if err := h.enter(ctx, "add"); err != nil {
		return AddReply{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.adds = append(h.adds, r)
	return h.reply, nil
}

func (h *testHandler) Del(ctx context.Context, r DelRequest) error {
	err := h.enter(ctx, "del")
	h.mu.Lock()
	h.dels = append(h.dels, r)
	h.mu.Unlock()
	return err
}

func (h *testHandler) Check(ctx context.Context, r CheckRequest) error {
	err := h.enter(ctx, "check")
	h.mu.Lock()
	h.checks = append(h.checks, r)
	h.mu.Unlock()
	return err
}

func (h *testHandler) Status(ctx context.Context) error { return h.enter(ctx, "status") }

func (h *testHandler) GC(ctx context.Context, r GCRequest) error {
	err := h.enter(ctx, "gc")
	h.mu.Lock()
	h.gcs = append(h.gcs, r)
	h.mu.Unlock()
	return err
}

func goodReply() AddReply {
	r := AddReply{
		IP:          netip.MustParseAddr("10.0.1.7"),
		ENI:         ENIInfo{ID: "eni-1", MAC: "00:16:3e:00:00:01", VSwitchCIDR: netip.MustParsePrefix("10.0.1.0/24"), Gateway: netip.MustParseAddr("10.0.1.253")},
		Table:       1003,
		MTU:         1500,
		ServiceCIDR: netip.MustParsePrefix("10.96.0.0/12"),
	}
	r.Rules.ToPod, r.Rules.FromPod = 512, 2048
	return r
}

func pod(id string) PodID {
	return PodID{ContainerID: id, Netns: "/var/run/netns/cni-" + id, IfName: "eth0", Namespace: "default", Name: "web-" + id}
}

// serve starts Serve on a socket in a fresh directory and stops it at the end of the test.
func serve(t *testing.T, h Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "run", "eni.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, sock, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	waitListening(t, sock, done)
	return sock
}

func waitListening(t *testing.T, sock string, done chan error) {
	t.Helper()
	for range 500 {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return
		}
		select {
		case err := <-done:
			t.Fatalf("Serve returned %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("no socket at %s", sock)
}

func TestRoundTrip(t *testing.T) {
	h := &testHandler{reply: goodReply()}
	c := &Client{Socket: serve(t, h), Timeout: 30 * time.Second}
	ctx := context.Background()
	got, err := c.Add(ctx, AddRequest{Pod: pod("a1")})
	want := goodReply()
	want.Version = Version
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Add: %+v, %v; want %+v", got, err, want)
	}
	ip := netip.MustParseAddr("10.0.1.7")
	if err := c.Del(ctx, DelRequest{Pod: pod("a1"), IP: ip}); err != nil {
		t.Fatalf("Del: %v", err)
	}
	delNoNetns := pod("a2")
	delNoNetns.Netns = ""
	if err := c.Del(ctx, DelRequest{Pod: delNoNetns}); err != nil {
		t.Fatalf("Del without netns and IP: %v", err)
	}
	if err := c.Check(ctx, CheckRequest{Pod: pod("a1"), IP: ip}); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if err := c.Status(ctx); err != nil {
		t.Fatalf("Status: %v", err)
	}
	valid := []Attachment{{ContainerID: "a1", IfName: "eth0"}, {ContainerID: "b2", IfName: "net1"}}
	if err := c.GC(ctx, GCRequest{Valid: valid}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if fmt.Sprint(h.calls) != "[add del del check status gc]" {
		t.Errorf("calls %v", h.calls)
	}
	if len(h.adds) != 1 || h.adds[0] != (AddRequest{Version: Version, Pod: pod("a1")}) {
		t.Errorf("the handler got %+v", h.adds)
	}
	if len(h.dels) != 2 || h.dels[0] != (DelRequest{Version: Version, Pod: pod("a1"), IP: ip}) || h.dels[1].IP.IsValid() || h.dels[1].Pod != delNoNetns {
		t.Errorf("the handler got %+v", h.dels)
	}
	if len(h.checks) != 1 || h.checks[0] != (CheckRequest{Version: Version, Pod: pod("a1"), IP: ip}) {
		t.Errorf("the handler got %+v", h.checks)
	}
	if len(h.gcs) != 1 || fmt.Sprint(h.gcs[0].Valid) != fmt.Sprint(valid) {
		t.Errorf("the handler got %+v", h.gcs)
	}
}

// A handler's *Error comes back as *Error with its Code and Message; another error as Internal.
func TestHandlerErrors(t *testing.T) {
	h := &testHandler{reply: goodReply()}
	c := &Client{Socket: serve(t, h), Timeout: 30 * time.Second}
	for _, herr := range []error{
		&Error{Code: CodeLimit, Message: "ecs.g7.large serves 2 ENIs x 10 addresses = 20 pods; 20 in use"},
		fmt.Errorf("pool: %w", &Error{Code: CodeNotReady, Message: "reconciling"}),
		errors.New("disk full"),
	} {
		h.mu.Lock()
		h.err = herr
		h.mu.Unlock()
		var want *Error
		if !errors.As(herr, &want) {
			want = &Error{Code: CodeInternal, Message: "disk full"}
		}
		_, err := c.Add(context.Background(), AddRequest{Pod: pod("e1")})
		var got *Error
		if !errors.As(err, &got) || *got != *want {
			t.Errorf("handler error %v: client got %v, want %v", herr, err, want)
		}
		if err := c.Status(context.Background()); !errors.As(err, &got) || *got != *want {
			t.Errorf("handler error %v: Status got %v, want %v", herr, err, want)
		}
	}
}

// A second request for the same ContainerID+IfName while the first runs is refused with Busy; other pods are
// served meanwhile, and once the first ends the pod is served again.
func TestBusy(t *testing.T) {
	h := &testHandler{reply: goodReply(), block: make(chan struct{}), started: make(chan string, 10)}
	c := &Client{Socket: serve(t, h), Timeout: 30 * time.Second}
	first := make(chan error, 1)
	go func() {
		_, err := c.Add(context.Background(), AddRequest{Pod: pod("p1")})
		first <- err
	}()
	<-h.started
	var e *Error
	for _, call := range []func() error{
		func() error { _, err := c.Add(context.Background(), AddRequest{Pod: pod("p1")}); return err },
		func() error { return c.Del(context.Background(), DelRequest{Pod: pod("p1")}) },
		func() error {
			return c.Check(context.Background(), CheckRequest{Pod: pod("p1"), IP: netip.MustParseAddr("10.0.1.7")})
		},
	} {
		if err := call(); !errors.As(err, &e) || e.Code != CodeBusy || !strings.Contains(e.Message, "p1") {
			t.Errorf("concurrent request for the same pod: %v, want Busy naming it", err)
		}
	}
	// Another pod, or another interface of the same container, is not busy.
	other := make(chan error, 2)
	go func() { _, err := c.Add(context.Background(), AddRequest{Pod: pod("p2")}); other <- err }()
	net1 := pod("p1")
	net1.IfName = "net1"
	go func() { _, err := c.Add(context.Background(), AddRequest{Pod: net1}); other <- err }()
	<-h.started
	<-h.started
	close(h.block)
	for range 2 {
		if err := <-other; err != nil {
			t.Errorf("another pod: %v", err)
		}
	}
	if err := <-first; err != nil {
		t.Fatalf("first: %v", err)
	}
	h.mu.Lock()
	h.started = nil
	h.mu.Unlock()
	if _, err := c.Add(context.Background(), AddRequest{Pod: pod("p1")}); err != nil {
		t.Errorf("after the first ended: %v", err)
	}
}

func TestVersionMismatch(t *testing.T) {
	h := &testHandler{reply: goodReply()}
	sock := serve(t, h)
	c := &Client{Socket: sock, Timeout: 30 * time.Second}
	var e *Error
	_, err := c.Add(context.Background(), AddRequest{Version: "weft.eni/v0", Pod: pod("v1")})
	if !errors.As(err, &e) || e.Code != CodeVersion || !strings.Contains(e.Message, "weft.eni/v0") {
		t.Errorf("old plugin: %v, want Version naming both", err)
	}
	// A request of another version that does not even decode as ours still gets Version, not BadRequest.
	resp := post(t, sock, "del", `{"Version":"weft.eni/v2","Pod":{"ContainerID":"x","IfName":"eth0"},"Extra":1}`, nil)
	if resp.Error == nil || resp.Error.Code != CodeVersion {
		t.Errorf("newer plugin: %+v, want Version", resp)
	}
	// The client checks the daemon's version too: a server of another version answering 200.
	other := filepath.Join(t.TempDir(), "other.sock")
	ln, err := net.Listen("unix", other)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"Version":"weft.eni/v9","IP":"10.0.0.9","Table":1001}`)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	oc := &Client{Socket: other, Timeout: 30 * time.Second}
	if _, err := oc.Add(context.Background(), AddRequest{Pod: pod("v1")}); !errors.As(err, &e) || e.Code != CodeVersion || !strings.Contains(e.Message, "v9") {
		t.Errorf("newer daemon: %v, want Version", err)
	}
	if err := oc.Status(context.Background()); !errors.As(err, &e) || e.Code != CodeVersion {
		t.Errorf("newer daemon, Status: %v, want Version", err)
	}
	if len(h.calls) != 0 {
		t.Errorf("the handler was called: %v", h.calls)
	}
}

type rawReply struct {
	status int
	errorReply
}

// post sends body to verb on sock with plain net/http, returning the status and the decoded error reply.
func post(t *testing.T, sock, verb, body string, hdr map[string]string) rawReply {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, _ := http.NewRequest(http.MethodPost, "http://weftd/v1/"+verb, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("post %s: %v", verb, err)
	}
	defer resp.Body.Close()
	var r rawReply
	r.status = resp.StatusCode
	b, _ := io.ReadAll(resp.Body)
	_ = jsonUnmarshal(b, &r.errorReply)
	return r
}

func TestBadRequests(t *testing.T) {
	h := &testHandler{reply: goodReply()}
	sock := serve(t, h)
	big := `{"Version":"weft.eni/v1","Valid":[` + strings.Repeat(`{"ContainerID":"abcdef","IfName":"eth0"},`, 2000) + `{"ContainerID":"a","IfName":"eth0"}]}`
	for _, c := range []struct{ verb, body, want string }{
		{"gc", big, "over 65536 bytes"},
		{"add", `{"Version":"weft.eni/v1","Pod":{"ContainerID":"","Netns":"/n","IfName":"eth0","Namespace":"a","Name":"b"}}`, "Pod.ContainerID"},
		{"add", `{"Version":"weft.eni/v1","Pod":{"ContainerID":"-x","Netns":"/n","IfName":"eth0","Namespace":"a","Name":"b"}}`, "Pod.ContainerID"},
		{"add", `{"Version":"weft.eni/v1","Pod":{"ContainerID":"x/../y","Netns":"/n","IfName":"eth0","Namespace":"a","Name":"b"}}`, "Pod.ContainerID"},
		{"add", `{"Version":"weft.eni/v1","Pod":{"ContainerID":"` + strings.Repeat("a", 257) + `","Netns":"/n","IfName":"eth0","Namespace":"a","Name":"b"}}`, "Pod.ContainerID"},
		{"add", `{"Version":"weft.eni/v1","Pod":{"ContainerID":"x","Netns":"/n","IfName":"eth0/1","Namespace":"a","Name":"b"}}`, "Pod.IfName"},
		{"add", `{"Version":"weft.eni/v1","Pod":{"ContainerID":"x","Netns":"/n","IfName":"abcdefghijklmnop","Namespace":"a","Name":"b"}}`, "Pod.IfName"},
		{"add", `{"Version":"weft.eni/v1","Pod":{"ContainerID":"x","Netns":"n","IfName":"eth0","Namespace":"a","Name":"b"}}`, "Pod.Netns"},
		{"add", `{"Version":"weft.eni/v1","Pod":{"ContainerID":"x","Netns":"/a/../b","IfName":"eth0","Namespace":"a","Name":"b"}}`, "Pod.Netns"},
		{"add", `{"Version":"weft.eni/v1","Pod":{"ContainerID":"x","Netns":"/n","IfName":"eth0","Namespace":"","Name":"b"}}`, "Pod.Namespace"},
		{"add", `{"Version":"weft.eni/v1","Pod":{"ContainerID":"x","Netns":"/n","IfName":"eth0","Namespace":"a","Name":"B"}}`, "Pod.Name"},
		{"check", `{"Version":"weft.eni/v1","Pod":{"ContainerID":"x","Netns":"/n","IfName":"eth0"}}`, "IP"},
		{"del", `{"Version":"weft.eni/v1","Pod":{"ContainerID":"x","IfName":"eth0"},"IP":"fd00::1"}`, "IP"},
		{"del", `{"Version":"weft.eni/v1","Pod":{"ContainerID":"x","IfName":"eth0"},"IP":"10.0.0.300"}`, "IP"},
		{"gc", `{"Version":"weft.eni/v1","Valid":[{"ContainerID":"a","IfName":"eth0"},{"ContainerID":"b","IfName":""}]}`, "Valid[1].IfName"},
		{"add", `{"Version":"weft.eni/v1","Pod":{},"Surprise":true}`, "Surprise"},
		{"status", `{"Version":"weft.eni/v1"} {}`, "after the JSON object"},
		{"status", `[]`, "status request"},
		{"status", ``, "status request"},
	} {
		r := post(t, sock, c.verb, c.body, nil)
		if r.Error == nil || r.Error.Code != CodeBadRequest || !strings.Contains(r.Error.Message, c.want) || r.status/100 != 4 {
			t.Errorf("%s %.60s: HTTP %d %+v, want BadRequest naming %s", c.verb, c.body, r.status, r.Error, c.want)
		}
	}
	if r := post(t, sock, "status", `{"Version":"weft.eni/v1"}`, map[string]string{TimeoutHeader: "soon"}); r.Error == nil || !strings.Contains(r.Error.Message, TimeoutHeader) {
		t.Errorf("bad %s: %+v", TimeoutHeader, r)
	}
	if r := post(t, sock, "nope", `{}`, nil); r.status != http.StatusNotFound || r.Error == nil || r.Error.Code != CodeBadRequest {
		t.Errorf("unknown path: %+v", r)
	}
	if len(h.calls) != 0 {
		t.Errorf("the handler was called: %v", h.calls)
	}
}

// The handler gets the client's deadline; past it the client's call ends with an error that is
// context.DeadlineExceeded, and the server, given a deadline in the header, answers Timeout itself. The pod
// stays busy until the handler really returns.
func TestDeadline(t *testing.T) {
	h := &testHandler{reply: goodReply(), block: make(chan struct{}), started: make(chan string, 10)}
	sock := serve(t, h)
	c := &Client{Socket: sock, Timeout: 300 * time.Millisecond}
	_, err := c.Add(context.Background(), AddRequest{Pod: pod("slow")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow handler: %v, want context.DeadlineExceeded", err)
	}
	<-h.started
	h.mu.Lock()
	saw := h.sawDL
	h.mu.Unlock()
	if saw <= 0 || saw > 300*time.Millisecond {
		t.Errorf("the handler's deadline was %v away, want within the client's 300ms", saw)
	}
	// Straight at the server: it answers Timeout when the header's deadline passes.
	r := post(t, sock, "add", `{"Version":"weft.eni/v1","Pod":{"ContainerID":"slow2","Netns":"/n","IfName":"eth0","Namespace":"a","Name":"b"}}`,
		map[string]string{TimeoutHeader: "200ms"})
	if r.Error == nil || r.Error.Code != CodeTimeout || !errors.Is(r.Error, context.DeadlineExceeded) {
		t.Errorf("server-side deadline: %+v, want Timeout", r)
	}
	<-h.started
	// The first handler still runs: its pod is busy.
	c.Timeout = 30 * time.Second
	var e *Error
	if _, err := c.Add(context.Background(), AddRequest{Pod: pod("slow")}); !errors.As(err, &e) || e.Code != CodeBusy {
		t.Errorf("while the timed-out handler runs: %v, want Busy", err)
	}
	h.mu.Lock()
	h.started = nil
	h.mu.Unlock()
	close(h.block)
}

// A caller's context is respected: cancelling it ends the call.
func TestContextCancelled(t *testing.T) {
	h := &testHandler{reply: goodReply(), block: make(chan struct{}), started: make(chan string, 1), honour: true}
	c := &Client{Socket: serve(t, h), Timeout: 30 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-h.started; cancel() }()
	if err := c.Status(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}

func TestHandlerPanic(t *testing.T) {
	h := &testHandler{reply: goodReply(), panicOn: "add"}
	c := &Client{Socket: serve(t, h), Timeout: 30 * time.Second}
	var e *Error
	_, err := c.Add(context.Background(), AddRequest{Pod: pod("boom")})
	if !errors.As(err, &e) || e.Code != CodeInternal || !strings.Contains(e.Message, "panic") {
		t.Fatalf("panic: %v, want Internal", err)
	}
	// The server lives on, and the pod is not left busy.
	h.mu.Lock()
	h.panicOn = ""
	h.mu.Unlock()
	if _, err := c.Add(context.Background(), AddRequest{Pod: pod("boom")}); err != nil {
		t.Errorf("after a panic: %v", err)
	}
}

// A reply without an address never reaches the plugin.
func TestBadReply(t *testing.T) {
	h := &testHandler{}
	c := &Client{Socket: serve(t, h), Timeout: 30 * time.Second}
	var e *Error
	if _, err := c.Add(context.Background(), AddRequest{Pod: pod("r1")}); !errors.As(err, &e) || e.Code != CodeInternal || !strings.Contains(e.Message, "IP") {
		t.Errorf("empty reply: %v, want Internal naming IP", err)
	}
}

func TestUnreachable(t *testing.T) {
	dir := t.TempDir()
	c := &Client{Socket: filepath.Join(dir, "none.sock"), Timeout: 5 * time.Second}
	err := c.Status(context.Background())
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, syscall.ENOENT) || !strings.Contains(err.Error(), "none.sock") {
		t.Errorf("missing socket: %v, want ErrUnreachable wrapping ENOENT and naming the socket", err)
	}
	// A socket file nobody listens on: refused.
	stale := staleSocket(t, dir)
	c.Socket = stale
	if _, err := c.Add(context.Background(), AddRequest{Pod: pod("u1")}); !errors.Is(err, ErrUnreachable) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("refused: %v, want ErrUnreachable wrapping ECONNREFUSED", err)
	}
	var e *Error
	if errors.As(err, &e) {
		t.Errorf("unreachable reads as a daemon's answer: %v", e)
	}
}

// staleSocket leaves a socket file in dir that no process listens on.
func staleSocket(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSocketFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "weft")
	sock := filepath.Join(dir, "eni.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, sock, &testHandler{}) }()
	waitListening(t, sock, done)
	st, err := os.Stat(sock)
	if err != nil || st.Mode().Perm() != 0o600 || st.Mode().Type() != os.ModeSocket {
		t.Errorf("socket %v %v, want a 0600 socket", st.Mode(), err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("directory %v %v, want 0700", st.Mode(), err)
	}
	// A second server on the same path refuses, and leaves the first serving.
	err = Serve(context.Background(), sock, &testHandler{})
	if err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("second Serve: %v, want a refusal", err)
	}
	if err := (&Client{Socket: sock, Timeout: 5 * time.Second}).Status(context.Background()); err != nil {
		t.Errorf("the first server after the refusal: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Serve returned: %v", err)
	}
	// A path that is not a socket is not removed.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o600)
	if err := Serve(context.Background(), file, &testHandler{}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: %v", err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("regular file removed: %v", err)
	}
	if err := Serve(context.Background(), "rel.sock", &testHandler{}); err == nil {
		t.Error("relative socket path accepted")
	}
}

// A socket file left by a dead weftd is removed and served on.
func TestStaleSocket(t *testing.T) {
	dir := t.TempDir()
	stale := staleSocket(t, dir)
	h := &testHandler{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, stale, h) }()
	waitListening(t, stale, done)
	if err := (&Client{Socket: stale, Timeout: 5 * time.Second}).Status(context.Background()); err != nil {
		t.Errorf("Status on the revived socket: %v", err)
	}
	if now, err := os.Lstat(stale); err != nil || now.Mode().Perm() != 0o600 {
		t.Errorf("socket not replaced: %v %v", now.Mode(), err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// Serve returns within its grace once its context ends, even with a handler that never returns.
func TestShutdownWithHungHandler(t *testing.T) {
	old := shutdownGrace
	shutdownGrace = 200 * time.Millisecond
	t.Cleanup(func() { shutdownGrace = old })
	h := &testHandler{reply: goodReply(), block: make(chan struct{}), started: make(chan string, 1)}
	defer close(h.block)
	sock := filepath.Join(t.TempDir(), "eni.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, sock, h) }()
	waitListening(t, sock, done)
	called := make(chan error, 1)
	go func() {
		_, err := (&Client{Socket: sock, Timeout: 30 * time.Second}).Add(context.Background(), AddRequest{Pod: pod("h1")})
		called <- err
	}()
	<-h.started
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := <-called; err == nil {
		t.Error("the hung call succeeded")
	}
}
