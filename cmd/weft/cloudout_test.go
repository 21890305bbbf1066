package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/testenv"
)

// The cloud API unreachable, hung, slow or answering garbage: weft quota and weft plan --instance-type-source
// api exit 3 within --timeout with a message naming the action and the cause, stop at once on SIGINT and
// SIGTERM, use next to no CPU while they wait, and work again once the API is back.

// idleCPU is the most CPU a CLI may use over one of these runs: it waits on the network, nothing else.
const idleCPU = 500 * time.Millisecond

// cloudStub is an API endpoint whose behaviour the test switches.
type cloudStub struct {
	host     string
	requests atomic.Int32
	handler  atomic.Pointer[http.Handler]
}

func newCloudStub(t *testing.T, h http.Handler) *cloudStub {
	c := &cloudStub{}
	c.set(h)
	stop := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		h := *c.handler.Load()
		if h == nil {
			// Hung: read the request, never answer (until the client goes or the test ends).
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-stop:
			}
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { close(stop); s.Close() })
	c.host = strings.TrimPrefix(s.URL, "http://")
	return c
}

func (c *cloudStub) set(h http.Handler) { c.handler.Store(&h) }

// answer is a handler answering every call with status, type and body.
func answer(status int, ctype, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

// closedAddr is an address nothing listens on (a listener opened and closed: the API stopped).
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	_ = ln.Close()
	return a
}

// cliRun is one finished CLI run.
type cliRun struct {
	code   int
	stderr string
	cpu    time.Duration // user + system time of the process
}

// cliCase is one of the two commands that call the cloud.
type cliCase struct {
	name string
	args []string
}

var cloudCLIs = []cliCase{
	{"quota", []string{"quota", "--region", "cn-hangzhou", "--vpc-id", "vpc-alisim0001"}},
	{"plan", []string{"plan", "--pod-cidr", "10.244.0.0/16", "--instance-type", "ecs.g7.2xlarge", "--instance-type-source", "api", "--region", "cn-hangzhou"}},
}

// runCLI runs weft against endpoint; signal, when set, is sent once the stub has seen a request. The run must
// end within limit (a bound against a hang, far above what it should take).
func runCLI(t *testing.T, stub *cloudStub, endpoint string, c cliCase, sig os.Signal, limit time.Duration, extra ...string) cliRun {
	t.Helper()
	bin := testenv.WeftBin(t, "weft")
	cmd := exec.Command(bin, append(append([]string{}, c.args...), extra...)...)
	cmd.Env = append(os.Environ(), "VPC_ENDPOINT="+endpoint, "ECS_ENDPOINT="+endpoint, "QUOTAS_ENDPOINT="+endpoint, "ALICLOUD_CLIENT_SCHEME=HTTP",
		"ACCESS_KEY_ID="+sim.DefaultAccessKeyID, "ACCESS_KEY_SECRET="+sim.DefaultAccessKeySecret, "METADATA_ENDPOINT=127.0.0.1:1")
	var stderr bytes.Buffer
	cmd.Stderr, cmd.Stdout = &stderr, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if sig != nil {
		for stub.requests.Load() == 0 {
			select {
			case err := <-done:
				t.Fatalf("weft %s ended before calling the API: %v\n%s", c.name, err, stderr.String())
			case <-time.After(10 * time.Millisecond):
			}
		}
		time.Sleep(200 * time.Millisecond) // well into the hung call
		_ = cmd.Process.Signal(sig)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("weft %s still running after %s (signal %v)\n%s", c.name, limit, sig, stderr.String())
	}
	st := cmd.ProcessState
	return cliRun{code: st.ExitCode(), stderr: stderr.String(), cpu: st.UserTime() + st.SystemTime()}
}

// check asserts exit 3, a message with every want, no panic, and idle CPU.
func (r cliRun) check(t *testing.T, what string, want ...string) {
	t.Helper()
	if r.code != 3 {
		t.Errorf("%s: exit %d, want 3\n%s", what, r.code, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("%s: the message lacks %q:\n%s", what, w, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
		t.Errorf("%s: panicked:\n%s", what, r.stderr)
	}
	if r.cpu > idleCPU {
		t.Errorf("%s: used %s of CPU while waiting on the API, want at most %s", what, r.cpu, idleCPU)
	}
}

// action is the first call each command makes.
func action(c cliCase) string {
	if c.name == "quota" {
		return "DescribeRouteTableList"
	}
	return "DescribeInstanceTypes"
}

func TestCLIsWithTheCloudAPIDown(t *testing.T) {
	for _, c := range cloudCLIs {
		// Stopped: nothing listens. The client's retries run out well within --timeout.
		r := runCLI(t, nil, closedAddr(t), c, nil, time.Minute)
		r.check(t, c.name+", API stopped", "weft "+c.name+": ", action(c), "connection refused")

		// Hung: every call accepted and never answered; --timeout bounds the whole command.
		stub := newCloudStub(t, nil)
		r = runCLI(t, stub, stub.host, c, nil, time.Minute, "--timeout", "3s")
		r.check(t, c.name+", API hung", action(c), "stopped waiting for the cloud API (--timeout 3s passed)")

		// Slow: alisim answering every call after 5 s, beyond --timeout.
		world := sim.NewWorld(sim.DefaultState(), nil, "")
		world.SetTiming(sim.Timing{})
		srv := sim.NewServer(world)
		srv.SetFault("*", sim.Fault{Latency: 5 * time.Second})
		stub.set(srv)
		r = runCLI(t, stub, stub.host, c, nil, time.Minute, "--timeout", "2s")
		r.check(t, c.name+", API slow", action(c), "(--timeout 2s passed)", "no answer after")

		// Back: the same endpoint answering at once.
		srv.SetFault("*", sim.Fault{})
		if r := runCLI(t, stub, stub.host, c, nil, time.Minute); r.code != 0 {
			t.Errorf("%s, API back: exit %d\n%s", c.name, r.code, r.stderr)
		}
	}
}

func TestCLIsStopOnSignals(t *testing.T) {
	stub := newCloudStub(t, nil)
	for _, c := range cloudCLIs {
		for _, sig := range []struct {
			sig  os.Signal
			text string
		}{{syscall.SIGINT, "interrupt signal received"}, {syscall.SIGTERM, "terminated signal received"}} {
			stub.requests.Store(0)
			// --timeout far away and the SDK's own timeout (10 s) later than the bound: only the signal can end it.
			r := runCLI(t, stub, stub.host, c, sig.sig, 5*time.Second, "--timeout", "1h")
			r.check(t, c.name+" "+sig.text, action(c), "stopped waiting for the cloud API ("+sig.text+")")
		}
	}
}

func TestCLIsOnMalformedAnswers(t *testing.T) {
	stub := newCloudStub(t, nil)
	for _, a := range []struct {
		name string
		h    http.Handler
		want string
	}{
		{"garbage", answer(200, "application/json", "\x00garbage"), "not JSON"},
		{"truncated JSON", answer(200, "application/json", `{"RequestId":"r","InstanceTypes":{"InstanceType":[{"Instan`), "not JSON"},
		{"HTML", answer(200, "text/html", "<html><body>Welcome</body></html>"), "text/html"},
		{"HTML error page", answer(502, "text/html", "<html>502 Bad Gateway</html>"), "HTTP 502: the answer is not the API's error JSON"},
		{"endless", answer(200, "application/json", strings.Repeat("[", 9<<20)), "over 8388608 bytes"},
	} {
		stub.set(a.h)
		for _, c := range cloudCLIs {
			r := runCLI(t, stub, stub.host, c, nil, time.Minute)
			r.check(t, c.name+", "+a.name, action(c), a.want)
		}
	}
}

// A --timeout that is not a positive duration is bad input (exit 3 through quotaCmd and planCmd), named.
func TestCLITimeoutFlag(t *testing.T) {
	for _, c := range cloudCLIs {
		for _, v := range []string{"0s", "-1s"} {
			args := append(append([]string{}, c.args[1:]...), "--timeout", v)
			var err error
			if c.name == "quota" {
				err = quotaRun(context.Background(), args)
			} else {
				err = planRun(context.Background(), args, io.Discard, io.Discard)
			}
			if err == nil || !strings.Contains(err.Error(), "--timeout "+v+": expected a positive duration") {
				t.Errorf("%s --timeout %s: %v", c.name, v, err)
			}
		}
	}
}
