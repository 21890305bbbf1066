package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/datapath"
)

// fakeDatapath records the pods it holds; the errors, when set, fail the call.
type fakeDatapath struct {
	mu                       sync.Mutex
	pods                     map[string]datapath.Pod // by host veth name
	calls                    []string
	delPods                  []datapath.Pod
	pruned                   [][]datapath.Attachment
	addErr, delErr, checkErr error
	pruneErr                 error
}

var _ Datapath = (*fakeDatapath)(nil)

func (f *fakeDatapath) Add(p datapath.Pod) (datapath.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "add "+p.IP.String())
	if f.addErr != nil {
		return datapath.Result{}, f.addErr // the datapath undoes its own part
	}
	if f.pods == nil {
		f.pods = map[string]datapath.Pod{}
	}
	veth := datapath.HostVethName(p.ContainerID, p.IfName)
	f.pods[veth] = p
	return datapath.Result{HostVeth: veth, HostMAC: net.HardwareAddr{0xee, 0xee, 0xee, 0xee, 0xee, 0xee},
		PodMAC: net.HardwareAddr{0x0a, 0x58, 0x0a, 0x00, 0x01, 0x07}}, nil
}

func (f *fakeDatapath) Del(p datapath.Pod) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "del "+p.IP.String())
	f.delPods = append(f.delPods, p)
	if f.delErr != nil {
		return f.delErr
	}
	delete(f.pods, datapath.HostVethName(p.ContainerID, p.IfName))
	return nil
}

func (f *fakeDatapath) Check(p datapath.Pod) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "check "+p.IP.String())
	if f.checkErr != nil {
		return f.checkErr
	}
	got, ok := f.pods[datapath.HostVethName(p.ContainerID, p.IfName)]
	if !ok || got != p {
		return fmt.Errorf("datapath of %s: have %+v, asked about %+v", p.ContainerID, got, p)
	}
	return nil
}

func (f *fakeDatapath) Prune(valid []datapath.Attachment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "prune")
	f.pruned = append(f.pruned, valid)
	keep := map[string]bool{}
	for _, a := range valid {
		keep[datapath.HostVethName(a.ContainerID, a.IfName)] = true
	}
	for v := range f.pods {
		if !keep[v] {
			delete(f.pods, v)
		}
	}
	return f.pruneErr
}

func (f *fakeDatapath) held() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.pods {
		out = append(out, p.ContainerID+" "+p.IP.String())
	}
	return out
}

// fakeWeftd is a cniproto.Handler holding one address per pod from a tiny range; err, when set, is what a verb
// answers.
type fakeWeftd struct {
	mu   sync.Mutex
	held map[string]netip.Addr // ContainerID/IfName -> address
	next netip.Addr
	reqs []any
	err  map[string]error
	// mutate, when set, changes each ADD reply.
	mutate func(*cniproto.AddReply)
	// gate, when set, holds each ADD until it is closed; entered gets each ADD's container as it starts.
	gate    chan struct{}
	entered chan string
}

func newWeftd() *fakeWeftd {
	return &fakeWeftd{held: map[string]netip.Addr{}, next: netip.MustParseAddr("10.0.1.7"), err: map[string]error{}}
}

func (w *fakeWeftd) Add(_ context.Context, r cniproto.AddRequest) (cniproto.AddReply, error) {
	w.mu.Lock()
	gate, entered := w.gate, w.entered
	w.mu.Unlock()
	if entered != nil {
		entered <- r.Pod.ContainerID
	}
	if gate != nil {
		<-gate // as a pool waiting for an address: the context's end is not looked at
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reqs = append(w.reqs, r)
	if err := w.err["add"]; err != nil {
		return cniproto.AddReply{}, err
	}
	key := r.Pod.ContainerID + "/" + r.Pod.IfName
	ip, ok := w.held[key]
	if !ok {
		ip = w.next
		w.next = w.next.Next()
		w.held[key] = ip
	}
	reply := cniproto.AddReply{IP: ip, Table: 1003, MTU: 1500,
		ENI: cniproto.ENIInfo{ID: "eni-1", MAC: "00:16:3e:00:00:01", VSwitchCIDR: netip.MustParsePrefix("10.0.1.0/24"), Gateway: netip.MustParseAddr("10.0.1.253")}}
	reply.Rules.ToPod, reply.Rules.FromPod = 600, 2100
	if w.mutate != nil {
		w.mutate(&reply)
	}
	return reply, nil
}

func (w *fakeWeftd) Del(_ context.Context, r cniproto.DelRequest) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reqs = append(w.reqs, r)
	if err := w.err["del"]; err != nil {
		return err
	}
	delete(w.held, r.Pod.ContainerID+"/"+r.Pod.IfName)
	return nil
}

func (w *fakeWeftd) Check(_ context.Context, r cniproto.CheckRequest) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reqs = append(w.reqs, r)
	if err := w.err["check"]; err != nil {
		return err
	}
	if w.held[r.Pod.ContainerID+"/"+r.Pod.IfName] != r.IP {
		return &cniproto.Error{Code: cniproto.CodeBadRequest, Message: "not this pod's address"}
	}
	return nil
}

func (w *fakeWeftd) Status(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reqs = append(w.reqs, "status")
	return w.err["status"]
}

func (w *fakeWeftd) GC(_ context.Context, r cniproto.GCRequest) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reqs = append(w.reqs, r)
	if err := w.err["gc"]; err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, a := range r.Valid {
		keep[a.ContainerID+"/"+a.IfName] = true
	}
	for k := range w.held {
		if !keep[k] {
			delete(w.held, k)
		}
	}
	return nil
}

func (w *fakeWeftd) setErr(verb string, err error) {
	w.mu.Lock()
	w.err[verb] = err
	w.mu.Unlock()
}

func (w *fakeWeftd) holding() map[string]netip.Addr {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]netip.Addr{}
	for k, v := range w.held {
		out[k] = v
	}
	return out
}

func (w *fakeWeftd) requests() []any {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]any(nil), w.reqs...)
}

// env is one test's plugin, fake datapath and fake weftd on a real socket.
type env struct {
	p      *Plugin
	dp     *fakeDatapath
	weftd  *fakeWeftd
	socket string
	data   string // dataDir
	out    *bytes.Buffer
	errOut *bytes.Buffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{dp: &fakeDatapath{}, weftd: newWeftd(), out: &bytes.Buffer{}, errOut: &bytes.Buffer{}}
	e.p = &Plugin{Datapath: e.dp, Stdout: e.out, Stderr: e.errOut}
	e.socket = filepath.Join(t.TempDir(), "eni.sock")
	e.data = filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cniproto.Serve(ctx, e.socket, e.weftd) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	c := &cniproto.Client{Socket: e.socket, Timeout: 5 * time.Second}
	for i := 0; ; i++ {
		err := c.Status(context.Background())
		if err == nil {
			break
		}
		if i == 500 {
			t.Fatalf("weftd not serving: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.weftd.reqs = nil
	return e
}

func (e *env) conf(extra map[string]any) []byte {
	m := map[string]any{"cniVersion": "1.0.0", "name": "weft", "type": "weft-eni", "socket": e.socket, "timeout": "10s", "dataDir": e.data}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	return b
}

func (e *env) args(id string, conf []byte) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: id, Netns: "/var/run/netns/cni-" + id, IfName: "eth0",
		Args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-" + id + ";K8S_POD_INFRA_CONTAINER_ID=" + id, StdinData: conf}
}

// add runs ADD and returns its result as JSON.
func (e *env) add(t *testing.T, id string) map[string]any {
	t.Helper()
	e.out.Reset()
	if err := e.p.Add(e.args(id, e.conf(nil))); err != nil {
		t.Fatalf("ADD %s: %v", id, err)
	}
	var res map[string]any
	if err := json.Unmarshal(e.out.Bytes(), &res); err != nil {
		t.Fatalf("ADD result %q: %v", e.out, err)
	}
	return res
}

// states lists the records ADD left in dataDir.
func (e *env) states() []string {
	ents, _ := os.ReadDir(e.data)
	var out []string
	for _, d := range ents {
		out = append(out, d.Name())
	}
	return out
}

func stateName(id string) string { return datapath.HostVethName(id, "eth0") + ".json" }

func cniErr(t *testing.T, err error) *types.Error {
	t.Helper()
	var te *types.Error
	if !errors.As(err, &te) {
		t.Fatalf("%v (%T): not a CNI error", err, err)
	}
	return te
}

func TestAdd(t *testing.T) {
	e := newEnv(t)
	res := e.add(t, "c1")
	veth := datapath.HostVethName("c1", "eth0")
	want := map[string]any{
		"cniVersion": "1.0.0",
		"interfaces": []any{
			map[string]any{"name": veth, "mac": "ee:ee:ee:ee:ee:ee"},
			map[string]any{"name": "eth0", "mac": "0a:58:0a:00:01:07", "sandbox": "/var/run/netns/cni-c1"},
		},
		"ips":    []any{map[string]any{"interface": 1.0, "address": "10.0.1.7/32", "gateway": "169.254.1.1"}},
		"routes": []any{map[string]any{"dst": "0.0.0.0/0", "gw": "169.254.1.1"}},
	}
	if !reflect.DeepEqual(res, want) {
		got, _ := json.Marshal(res)
		w, _ := json.Marshal(want)
		t.Errorf("result\n%s\nwant\n%s", got, w)
	}
	// The datapath got weftd's address, table, MTU and rules.
	wantPod := datapath.Pod{ContainerID: "c1", Netns: "/var/run/netns/cni-c1", IfName: "eth0", IP: netip.MustParseAddr("10.0.1.7"),
		Table: 1003, MTU: 1500, Rules: datapath.Rules{ToPod: 600, FromPod: 2100}}
	if got := e.dp.pods[veth]; got != wantPod {
		t.Errorf("datapath %+v, want %+v", got, wantPod)
	}
	if st := e.states(); len(st) != 1 || st[0] != stateName("c1") {
		t.Errorf("dataDir holds %v, want c1's record", st)
	}
	if fi, err := os.Stat(filepath.Join(e.data, stateName("c1"))); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("record %v %v, want 0600", fi, err)
	}
	// weftd got the Kubernetes pod from CNI_ARGS.
	reqs := e.weftd.requests()
	if len(reqs) != 1 || reqs[0].(cniproto.AddRequest).Pod != (cniproto.PodID{ContainerID: "c1", Netns: "/var/run/netns/cni-c1", IfName: "eth0", Namespace: "default", Name: "web-c1"}) {
		t.Errorf("weftd got %+v", reqs)
	}
	// cniVersion 1.1.0 is answered in 1.1.0.
	e.out.Reset()
	if err := e.p.Add(e.args("c2", e.conf(map[string]any{"cniVersion": "1.1.0"}))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.out.String(), `"cniVersion": "1.1.0"`) {
		t.Errorf("1.1.0 result: %s", e.out)
	}
}

// A datapath failure gives the address back to weftd; nothing is left held.
func TestAddRollback(t *testing.T) {
	e := newEnv(t)
	e.dp.addErr = errors.New("veth: file exists")
	err := e.p.Add(e.args("r1", e.conf(nil)))
	te := cniErr(t, err)
	if te.Code != types.ErrInternal || !strings.Contains(te.Msg, "veth: file exists") || !strings.Contains(te.Msg, "10.0.1.7") {
		t.Errorf("error %+v", te)
	}
	if h := e.weftd.holding(); len(h) != 0 {
		t.Errorf("weftd still holds %v", h)
	}
	reqs := e.weftd.requests()
	if len(reqs) != 2 {
		t.Fatalf("weftd got %+v, want Add and Del", reqs)
	}
	if d, ok := reqs[1].(cniproto.DelRequest); !ok || d.IP != netip.MustParseAddr("10.0.1.7") || d.Pod.ContainerID != "r1" {
		t.Errorf("rollback Del %+v", reqs[1])
	}
	if e.out.Len() != 0 {
		t.Errorf("a result printed: %s", e.out)
	}
	// A failure after the datapath was built (the result cannot be written) undoes the datapath too.
	e.dp.addErr = nil
	e.p.Stdout = failWriter{}
	if err := e.p.Add(e.args("r2", e.conf(nil))); err == nil {
		t.Fatal("ADD with a broken stdout succeeded")
	}
	if h := e.weftd.holding(); len(h) != 0 {
		t.Errorf("weftd still holds %v", h)
	}
	if held := e.dp.held(); len(held) != 0 {
		t.Errorf("datapath left %v", held)
	}
	if st := e.states(); len(st) != 0 {
		t.Errorf("records left: %v", st)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("stdout closed") }

func TestAddWeftdErrors(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		err  error
		code uint
		want []string
	}{
		{&cniproto.Error{Code: cniproto.CodeBusy, Message: "another request for container b1 interface eth0 is running"}, types.ErrTryAgainLater, []string{"busy", "b1"}},
		{&cniproto.Error{Code: cniproto.CodeLimit, Message: "ecs.g7.large: 2 ENIs x 10 addresses = 20 pods, 20 in use"}, types.ErrTryAgainLater, []string{"no more pod addresses", "ecs.g7.large: 2 ENIs x 10 addresses = 20 pods, 20 in use"}},
		{&cniproto.Error{Code: cniproto.CodeNotReady, Message: "reconciling the checkpoint"}, types.ErrTryAgainLater, []string{"reconciling the checkpoint"}},
		{&cniproto.Error{Code: cniproto.CodeVersion, Message: "weftd speaks weft.eni/v2"}, types.ErrInternal, []string{"protocol versions", "weft.eni/v2"}},
		{errors.New("checkpoint: disk full"), types.ErrInternal, []string{"disk full"}},
	} {
		e.weftd.setErr("add", c.err)
		te := cniErr(t, e.p.Add(e.args("b1", e.conf(nil))))
		if te.Code != c.code {
			t.Errorf("weftd %v: code %d, want %d", c.err, te.Code, c.code)
		}
		for _, w := range c.want {
			if !strings.Contains(te.Error(), w) {
				t.Errorf("weftd %v: %q does not say %q", c.err, te.Error(), w)
			}
		}
	}
	if len(e.dp.calls) != 0 {
		t.Errorf("datapath called: %v", e.dp.calls)
	}
	for _, r := range e.weftd.requests() {
		if _, ok := r.(cniproto.DelRequest); ok {
			t.Errorf("a Del after a refused Add: %+v", r)
		}
	}
	// weftd not running.
	te := cniErr(t, e.p.Add(e.args("b1", e.conf(map[string]any{"socket": filepath.Join(t.TempDir(), "none.sock")}))))
	if te.Code != types.ErrTryAgainLater || !strings.Contains(te.Msg, "none.sock") || !strings.Contains(te.Msg, "not serving") {
		t.Errorf("unreachable: %+v", te)
	}
	// The runtime's arguments are checked before weftd is asked.
	a := e.args("b1", e.conf(nil))
	a.Args = "K8S_POD_NAMESPACE=default"
	if te := cniErr(t, e.p.Add(a)); te.Code != types.ErrInvalidEnvironmentVariables || !strings.Contains(te.Msg, "K8S_POD_NAME") {
		t.Errorf("no pod name: %+v", te)
	}
	a.Args = "K8S_POD_NAMESPACE"
	if te := cniErr(t, e.p.Add(a)); te.Code != types.ErrInvalidEnvironmentVariables || !strings.Contains(te.Msg, "CNI_ARGS") {
		t.Errorf("bad CNI_ARGS: %+v", te)
	}
}

func prevConf(e *env, res map[string]any) []byte { return e.conf(map[string]any{"prevResult": res}) }

func TestDel(t *testing.T) {
	e := newEnv(t)
	res := e.add(t, "d1")
	other := e.add(t, "d2")
	_ = other
	a := e.args("d1", prevConf(e, res))
	if err := e.p.Del(a); err != nil {
		t.Fatal(err)
	}
	if h := e.weftd.holding(); len(h) != 1 || h["d2/eth0"] != netip.MustParseAddr("10.0.1.8") {
		t.Errorf("weftd holds %v, want only d2's", h)
	}
	if held := e.dp.held(); len(held) != 1 || held[0] != "d2 10.0.1.8" {
		t.Errorf("datapath holds %v", held)
	}
	reqs := e.weftd.requests()
	if d := reqs[len(reqs)-1].(cniproto.DelRequest); d.IP != netip.MustParseAddr("10.0.1.7") || d.Pod.Name != "web-d1" {
		t.Errorf("weftd Del %+v", d)
	}
	// The datapath was told ADD's table and rule priorities, and the record is gone.
	wantPod := datapath.Pod{ContainerID: "d1", Netns: "/var/run/netns/cni-d1", IfName: "eth0", IP: netip.MustParseAddr("10.0.1.7"),
		Table: 1003, MTU: 1500, Rules: datapath.Rules{ToPod: 600, FromPod: 2100}}
	if len(e.dp.delPods) != 1 || e.dp.delPods[0] != wantPod {
		t.Errorf("datapath Del got %+v, want %+v", e.dp.delPods, wantPod)
	}
	if st := e.states(); len(st) != 1 || st[0] != stateName("d2") {
		t.Errorf("dataDir holds %v, want only d2's record", st)
	}
	// Again, and without prevResult or netns: still success.
	if err := e.p.Del(a); err != nil {
		t.Errorf("second DEL: %v", err)
	}
	a = e.args("d1", e.conf(nil))
	a.Netns = ""
	if err := e.p.Del(a); err != nil {
		t.Errorf("DEL without prevResult and netns: %v", err)
	}
	if last := e.dp.delPods[len(e.dp.delPods)-1]; last.Rules != datapath.DefaultRules || last.IP.IsValid() {
		t.Errorf("DEL without a record: datapath got %+v, want the default rules and no address", last)
	}
	// With the record but no prevResult, the address comes from the record.
	if err := e.p.Del(e.args("d2", e.conf(nil))); err != nil {
		t.Fatal(err)
	}
	if last := e.dp.delPods[len(e.dp.delPods)-1]; last.IP != netip.MustParseAddr("10.0.1.8") || last.Table != 1003 {
		t.Errorf("DEL from the record: datapath got %+v", last)
	}
	other = e.add(t, "d2")
	// A datapath that cannot be removed keeps the address held: the runtime retries.
	e.dp.delErr = errors.New("netlink: operation not permitted")
	if err := e.p.Del(e.args("d2", prevConf(e, other))); err == nil || !strings.Contains(err.Error(), "not permitted") {
		t.Errorf("DEL with a datapath failure: %v", err)
	}
	if h := e.weftd.holding(); len(h) != 1 {
		t.Errorf("address released while its datapath remains: %v", h)
	}
	e.dp.delErr = nil
	// weftd refusing (busy) is an error to retry.
	e.weftd.setErr("del", &cniproto.Error{Code: cniproto.CodeBusy, Message: "ADD running"})
	if te := cniErr(t, e.p.Del(e.args("d2", prevConf(e, other)))); te.Code != types.ErrTryAgainLater {
		t.Errorf("DEL with weftd busy: %+v", te)
	}
}

// DEL with weftd down succeeds (the pod must not be stuck terminating), says so, and removes the datapath.
func TestDelWeftdDown(t *testing.T) {
	e := newEnv(t)
	res := e.add(t, "w1")
	conf := e.conf(map[string]any{"prevResult": res, "socket": filepath.Join(t.TempDir(), "gone.sock")})
	if err := e.p.Del(e.args("w1", conf)); err != nil {
		t.Fatalf("DEL with weftd down: %v", err)
	}
	if held := e.dp.held(); len(held) != 0 {
		t.Errorf("datapath left %v", held)
	}
	if !strings.Contains(e.errOut.String(), "gone.sock") || !strings.Contains(e.errOut.String(), "GC") {
		t.Errorf("stderr %q does not say weftd was unreachable", e.errOut)
	}
	// A broken prevResult is no reason to fail DEL either.
	if err := e.p.Del(e.args("w1", e.conf(map[string]any{"prevResult": map[string]any{"cniVersion": "1.0.0", "ips": "x"}}))); err != nil {
		t.Errorf("DEL with a broken prevResult: %v", err)
	}
}

func TestCheck(t *testing.T) {
	e := newEnv(t)
	res := e.add(t, "k1")
	if err := e.p.Check(e.args("k1", prevConf(e, res))); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	reqs := e.weftd.requests()
	if c, ok := reqs[len(reqs)-1].(cniproto.CheckRequest); !ok || c.IP != netip.MustParseAddr("10.0.1.7") {
		t.Errorf("weftd Check %+v", reqs[len(reqs)-1])
	}
	if te := cniErr(t, e.p.Check(e.args("k1", e.conf(nil)))); !strings.Contains(te.Msg, "prevResult") {
		t.Errorf("CHECK without prevResult: %+v", te)
	}
	// prevResult and ADD's record disagreeing.
	wrong := e.conf(map[string]any{"prevResult": map[string]any{"cniVersion": "1.0.0", "ips": []any{map[string]any{"address": "10.0.1.99/32"}}}})
	if err := e.p.Check(e.args("k1", wrong)); err == nil || !strings.Contains(err.Error(), "10.0.1.99") {
		t.Errorf("CHECK with another address: %v", err)
	}
	// No record of ADD.
	if err := os.Remove(filepath.Join(e.data, stateName("k1"))); err != nil {
		t.Fatal(err)
	}
	if err := e.p.Check(e.args("k1", prevConf(e, res))); err == nil || !strings.Contains(err.Error(), "no usable record") {
		t.Errorf("CHECK without ADD's record: %v", err)
	}
	res = e.add(t, "k1")
	// The datapath gone: CHECK fails saying what.
	e.dp.checkErr = errors.New("no route to 10.0.1.7 via " + datapath.HostVethName("k1", "eth0"))
	if err := e.p.Check(e.args("k1", prevConf(e, res))); err == nil || !strings.Contains(err.Error(), "no route") {
		t.Errorf("CHECK with the datapath broken: %v", err)
	}
	e.dp.checkErr = nil
	// weftd no longer knowing the address: CHECK fails.
	e.weftd.mu.Lock()
	delete(e.weftd.held, "k1/eth0")
	e.weftd.mu.Unlock()
	if err := e.p.Check(e.args("k1", prevConf(e, res))); err == nil || !strings.Contains(err.Error(), "not this pod's address") {
		t.Errorf("CHECK with weftd disagreeing: %v", err)
	}
}

func TestStatus(t *testing.T) {
	e := newEnv(t)
	a := &skel.CmdArgs{StdinData: e.conf(map[string]any{"cniVersion": "1.1.0"})}
	if err := e.p.Status(a); err != nil {
		t.Fatalf("STATUS: %v", err)
	}
	e.weftd.setErr("status", &cniproto.Error{Code: cniproto.CodeNotReady, Message: "no usable ENI yet"})
	if te := cniErr(t, e.p.Status(a)); te.Code != 50 || !strings.Contains(te.Msg, "no usable ENI yet") {
		t.Errorf("not ready: %+v", te)
	}
	a.StdinData = e.conf(map[string]any{"cniVersion": "1.1.0", "socket": filepath.Join(t.TempDir(), "none.sock")})
	if te := cniErr(t, e.p.Status(a)); te.Code != 50 || !strings.Contains(te.Msg, "none.sock") {
		t.Errorf("unreachable: %+v", te)
	}
}

func TestGC(t *testing.T) {
	e := newEnv(t)
	e.add(t, "g1")
	e.add(t, "g2")
	e.add(t, "g3")
	valid := []map[string]any{{"containerID": "g2", "ifname": "eth0"}}
	a := &skel.CmdArgs{StdinData: e.conf(map[string]any{"cniVersion": "1.1.0", "cni.dev/valid-attachments": valid})}
	if err := e.p.GC(a); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if h := e.weftd.holding(); len(h) != 1 || !h["g2/eth0"].IsValid() {
		t.Errorf("weftd holds %v, want only g2", h)
	}
	if held := e.dp.held(); len(held) != 1 || held[0] != "g2 10.0.1.8" {
		t.Errorf("datapath holds %v, want only g2", held)
	}
	if len(e.dp.pruned) != 1 || !reflect.DeepEqual(e.dp.pruned[0], []datapath.Attachment{{ContainerID: "g2", IfName: "eth0"}}) {
		t.Errorf("Prune got %v", e.dp.pruned)
	}
	if st := e.states(); len(st) != 1 || st[0] != stateName("g2") {
		t.Errorf("dataDir holds %v, want only g2's record", st)
	}
	// weftd down: the datapaths are still pruned, and GC reports the failure.
	a.StdinData = e.conf(map[string]any{"cniVersion": "1.1.0", "socket": filepath.Join(t.TempDir(), "none.sock")})
	if err := e.p.GC(a); err == nil || !strings.Contains(err.Error(), "none.sock") {
		t.Errorf("GC with weftd down: %v", err)
	}
	if held := e.dp.held(); len(held) != 0 || len(e.dp.pruned) != 2 {
		t.Errorf("datapath holds %v after GC with no valid attachment", held)
	}
	// A failing prune is reported, and weftd's GC still runs.
	e.dp.pruneErr = errors.New("link wen0123456789ab: busy")
	e.weftd.mu.Lock()
	e.weftd.reqs = nil
	e.weftd.mu.Unlock()
	a.StdinData = e.conf(map[string]any{"cniVersion": "1.1.0"})
	if err := e.p.GC(a); err == nil || !strings.Contains(err.Error(), "wen0123456789ab") {
		t.Errorf("GC with a failing prune: %v", err)
	}
	if len(e.weftd.requests()) != 1 {
		t.Errorf("weftd's GC not called after a failing prune: %v", e.weftd.requests())
	}
}

func TestConfErrors(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		extra map[string]any
		want  string
	}{
		{map[string]any{"timeout": "0s"}, `"timeout"`},
		{map[string]any{"timeout": "11m"}, `"timeout"`},
		{map[string]any{"timeout": "soon"}, `"timeout"`},
		{map[string]any{"timeout": 120}, `"timeout"`},
		{map[string]any{"socket": "run/eni.sock"}, `"socket"`},
		{map[string]any{"socket": true}, `"socket"`},
		{map[string]any{"dataDir": "var/lib"}, `"dataDir"`},
		{map[string]any{"cniVersion": "0.3.1"}, `"cniVersion"`},
		{map[string]any{"cniVersion": nil}, `"cniVersion"`},
		{map[string]any{"name": nil}, `"name"`},
	} {
		conf := e.conf(c.extra)
		for verb, f := range map[string]func(*skel.CmdArgs) error{"ADD": e.p.Add, "DEL": e.p.Del, "CHECK": e.p.Check, "STATUS": e.p.Status, "GC": e.p.GC} {
			te := cniErr(t, f(e.args("x1", conf)))
			if te.Code != types.ErrInvalidNetworkConfig || !strings.Contains(te.Msg, c.want) {
				t.Errorf("%s %s: %+v, want code 7 naming %s", verb, conf, te, c.want)
			}
		}
	}
	if te := cniErr(t, e.p.Add(e.args("x1", []byte(`{"cniVersion":`)))); te.Code != types.ErrInvalidNetworkConfig {
		t.Errorf("truncated conf: %+v", te)
	}
	if len(e.weftd.requests()) != 0 || len(e.dp.calls) != 0 {
		t.Errorf("a bad conf reached weftd or the datapath: %v %v", e.weftd.requests(), e.dp.calls)
	}
	c, err := LoadConf([]byte(`{"cniVersion":"1.0.0","name":"weft","type":"weft-eni"}`))
	if err != nil || c.Socket != cniproto.DefaultSocket || c.timeout != DefaultTimeout {
		t.Errorf("defaults: %+v %v", c, err)
	}
}

func TestParseArgs(t *testing.T) {
	got, err := ParseArgs("IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-5d;K8S_POD_UID=u=v;;")
	if err != nil || got != (PodArgs{Namespace: "kube-system", Name: "coredns-5d"}) {
		t.Errorf("%+v %v", got, err)
	}
	if _, err := ParseArgs("K8S_POD_NAME"); err == nil {
		t.Error("a key without = accepted")
	}
}
