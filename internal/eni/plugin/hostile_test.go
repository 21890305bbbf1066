package plugin

// The plugin as a careless runtime calls it.

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/weftnet/weft/internal/eni/cniproto"
)

func (w *fakeWeftd) dels() int {
	n := 0
	for _, r := range w.requests() {
		if _, ok := r.(cniproto.DelRequest); ok {
			n++
		}
	}
	return n
}

// A pod the API does not have: weftd refuses it, the runtime hears a CNI_ARGS error (4), nothing is built.
func TestAddPodNotInTheAPI(t *testing.T) {
	e := newEnv(t)
	e.weftd.setErr("add", &cniproto.Error{Code: cniproto.CodeBadRequest, Message: "pod default/web-x1 does not exist"})
	te := cniErr(t, e.p.Add(e.args("x1", e.conf(nil))))
	if te.Code != types.ErrInvalidEnvironmentVariables || !strings.Contains(te.Msg, "does not exist") {
		t.Errorf("pod not in the API: %+v, want code 4 saying so", te)
	}
	if len(e.dp.calls) != 0 || e.weftd.dels() != 0 || len(e.states()) != 0 {
		t.Errorf("datapath %v, Dels %d, records %v after a refused ADD", e.dp.calls, e.weftd.dels(), e.states())
	}
}

// Two ADDs at once for one container: the second is refused Busy (11, to retry) and gives nothing back (that
// would free the first one's address); the first wins; one address is held, one datapath built.
func TestConcurrentAddsForOneContainer(t *testing.T) {
	e := newEnv(t)
	e.weftd.mu.Lock()
	e.weftd.gate, e.weftd.entered = make(chan struct{}), make(chan string, 4)
	e.weftd.mu.Unlock()
	var wg sync.WaitGroup
	var first error
	out := &bytes.Buffer{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		p := &Plugin{Datapath: e.dp, Stdout: out, Stderr: &bytes.Buffer{}}
		first = p.Add(e.args("cc1", e.conf(nil)))
	}()
	<-e.weftd.entered
	te := cniErr(t, e.p.Add(e.args("cc1", e.conf(nil))))
	if te.Code != types.ErrTryAgainLater || !strings.Contains(te.Msg, "busy") {
		t.Errorf("second ADD: %+v, want 11 busy", te)
	}
	close(e.weftd.gate)
	wg.Wait()
	if first != nil {
		t.Fatalf("first ADD: %v", first)
	}
	if !strings.Contains(out.String(), "10.0.1.7/32") {
		t.Errorf("first ADD's result: %s", out)
	}
	if h := e.weftd.holding(); len(h) != 1 || h["cc1/eth0"].String() != "10.0.1.7" {
		t.Errorf("weftd holds %v", h)
	}
	if e.weftd.dels() != 0 {
		t.Errorf("a Del reached weftd: %v", e.weftd.requests())
	}
	if held := e.dp.held(); len(held) != 1 {
		t.Errorf("datapath holds %v", held)
	}
}

// A DEL for a container nobody knows succeeds (DEL is idempotent) and still tells weftd.
func TestDelUnknownContainer(t *testing.T) {
	e := newEnv(t)
	if err := e.p.Del(e.args("never-added", e.conf(nil))); err != nil {
		t.Fatalf("DEL of an unknown container: %v", err)
	}
	if e.weftd.dels() != 1 {
		t.Errorf("weftd got %v, want one Del", e.weftd.requests())
	}
}

// Huge or malformed stdin is a net conf error (7) for every verb, and reaches neither weftd nor the datapath.
func TestHugeOrMalformedStdin(t *testing.T) {
	e := newEnv(t)
	huge := append([]byte(`{"cniVersion":"1.0.0","name":"weft","type":"weft-eni","x":"`), bytes.Repeat([]byte("A"), 4<<20)...)
	for name, in := range map[string][]byte{
		"huge, unterminated": huge,
		"binary":             {0x00, 0xff, 0xfe, '{'},
		"empty":              {},
		"an array":           []byte(`[1,2,3]`),
		"nested deep":        append(bytes.Repeat([]byte("["), 100000), bytes.Repeat([]byte("]"), 100000)...),
	} {
		for verb, f := range map[string]func(*skel.CmdArgs) error{"ADD": e.p.Add, "DEL": e.p.Del, "CHECK": e.p.Check, "STATUS": e.p.Status, "GC": e.p.GC} {
			err := f(e.args("m1", in))
			if te := cniErr(t, err); te.Code != types.ErrInvalidNetworkConfig {
				t.Errorf("%s %s: %+v, want code 7", name, verb, te)
			}
		}
	}
	if r := e.weftd.requests(); len(r) != 0 {
		t.Errorf("weftd got %+v from malformed stdin", r)
	}
	// A huge but valid conf (an unknown key's long value) is still a conf: DEL runs.
	if err := e.p.Del(e.args("m1", append(append([]byte{}, huge...), `"}`...))); err != nil {
		t.Errorf("DEL with a huge valid conf: %v", err)
	}
	if len(e.dp.pods) != 0 {
		t.Errorf("datapath holds %v", e.dp.held())
	}
}

// A socket path that is a directory (a careless hostPath mount) is weftd unreachable: ADD 11 naming the path
// and saying weftd does not serve it, DEL success (said on stderr), STATUS 50.
func TestSocketIsADirectory(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "eni.sock")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := e.conf(map[string]any{"socket": dir})
	te := cniErr(t, e.p.Add(e.args("sd1", conf)))
	if te.Code != types.ErrTryAgainLater || !strings.Contains(te.Msg, dir) || !strings.Contains(te.Msg, "weftd is not serving") {
		t.Errorf("ADD: %+v, want 11 saying weftd does not serve %s", te, dir)
	}
	if err := e.p.Del(e.args("sd1", conf)); err != nil {
		t.Errorf("DEL: %v", err)
	}
	if !strings.Contains(e.errOut.String(), dir) {
		t.Errorf("stderr %q does not say weftd was unreachable", e.errOut)
	}
	if te := cniErr(t, e.p.Status(e.args("sd1", e.conf(map[string]any{"socket": dir, "cniVersion": "1.1.0"})))); te.Code != 50 {
		t.Errorf("STATUS: %+v, want 50", te)
	}
	if len(e.dp.calls) != 1 || !strings.HasPrefix(e.dp.calls[0], "del") {
		t.Errorf("datapath calls %v, want DEL's only", e.dp.calls)
	}
}

// An ADD whose deadline passes while weftd waits for an address fails with 11 (try again), and the address
// weftd finds for it afterwards is given back, not left held for a pod that never got it.
func TestAddDeadlineWhileWeftdWaits(t *testing.T) {
	e := newEnv(t)
	e.weftd.mu.Lock()
	e.weftd.gate, e.weftd.entered = make(chan struct{}), make(chan string, 4)
	e.weftd.mu.Unlock()
	te := cniErr(t, e.p.Add(e.args("dl1", e.conf(map[string]any{"timeout": "1s"}))))
	if te.Code != types.ErrTryAgainLater || !strings.Contains(te.Msg, "in time") {
		t.Errorf("ADD past its deadline: %+v, want 11 saying weftd did not answer in time", te)
	}
	<-e.weftd.entered
	close(e.weftd.gate)                                                                     // the pool finds an address now
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) { // a hang guard
		if len(e.weftd.holding()) == 0 && e.weftd.dels() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("weftd holds %v after the ADD failed (requests %v)", e.weftd.holding(), e.weftd.requests())
		}
	}
	if len(e.dp.calls) != 0 || len(e.states()) != 0 {
		t.Errorf("datapath %v, records %v", e.dp.calls, e.states())
	}
}
