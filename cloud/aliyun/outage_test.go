package aliyun_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
)

// outageClient is a client of every API at url, with a per-attempt timeout far longer than any test waits: only
// the context can end its calls early.
func outageClient(t *testing.T, url string, attempts int, timeout time.Duration) *aliyun.Client {
	t.Helper()
	host := strings.TrimPrefix(url, "http://")
	cl, err := aliyun.NewClient(aliyun.Config{Region: "cn-hangzhou", VPCEndpoint: host, ECSEndpoint: host, QuotasEndpoint: host, Scheme: "HTTP",
		Credentials: aliyun.Static{AccessKeyID: sim.DefaultAccessKeyID, AccessKeySecret: sim.DefaultAccessKeySecret},
		Attempts:    attempts, BackoffBase: 5 * time.Millisecond, BackoffCap: 20 * time.Millisecond, RatePerSecond: 1000, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// hangServer accepts every call and never answers; abandoned counts the requests whose client went away.
type hangServer struct {
	url       string
	abandoned atomic.Int32
}

func newHangServer(t *testing.T) *hangServer {
	h := &hangServer{}
	stop := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // the server notices a gone client only once the body is read
		select {
		case <-r.Context().Done():
			h.abandoned.Add(1)
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); s.Close() })
	h.url = s.URL
	return h
}

// waitAbandoned waits until n requests were dropped by the client (the server sees their connection end).
func (h *hangServer) waitAbandoned(t *testing.T, n int32) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); h.abandoned.Load() < n; {
		if time.Now().After(end) {
			t.Fatalf("the server saw %d abandoned request(s), want %d: the call left its HTTP request running", h.abandoned.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// within runs call and fails the test when it has not returned in 10 s (a hung call would hold the test for
// the SDK's timeout, an hour).
func within(t *testing.T, what string, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still waiting on the hung API 10 s after its context ended", what)
		return nil
	}
}

// A call to an API that never answers ends when its context does, with an error naming the action and the
// cause, and its HTTP request is abandoned at once (the server sees the connection go), though the SDK's own
// timeout is an hour away: nothing is left running after the call returns.
func TestCallToAHungAPIEndsWithItsContext(t *testing.T) {
	h := newHangServer(t)
	cl := outageClient(t, h.url, 5, time.Hour)

	ctx, cancel := context.WithTimeoutCause(context.Background(), 200*time.Millisecond, errors.New("--timeout 200ms passed"))
	defer cancel()
	err := within(t, "deadline", func() error { _, err := cl.RouteTables(ctx, "vpc-alisim0001"); return err })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "DescribeRouteTableList: stopped waiting for the cloud API (--timeout 200ms passed)") ||
		!strings.Contains(err.Error(), "the attempt in flight had no answer") {
		t.Fatalf("hung API, deadline: %v", err)
	}
	h.waitAbandoned(t, 1)

	// A signal (a cancelled context with a cause) ends it too, whichever API is called.
	for i, call := range []func(context.Context) error{
		func(ctx context.Context) error { _, err := cl.RouteEntries(ctx, table); return err },
		func(ctx context.Context) error { _, err := cl.RouteEntryQuota(ctx); return err },
		func(ctx context.Context) error { _, err := cl.InstanceTypes(ctx, "ecs.g7.large"); return err },
	} {
		ctx, cancel := context.WithCancelCause(context.Background())
		go func() { time.Sleep(100 * time.Millisecond); cancel(errors.New("interrupt signal received")) }()
		err := within(t, fmt.Sprintf("call %d", i), func() error { return call(ctx) })
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stopped waiting for the cloud API (interrupt signal received)") {
			t.Fatalf("call %d, cancelled: %v", i, err)
		}
		h.waitAbandoned(t, int32(i+2))
	}
}

// An API that answers too slowly: every attempt ends at the per-attempt timeout, and after the retries the
// caller gets a timeout error naming the action (its own context is still live, so it is not a cancellation);
// an answer within the timeout is taken.
func TestSlowAPI(t *testing.T) {
	f := zeroTimingFixture(t)
	f.srv.SetFault("*", sim.Fault{Latency: time.Second})
	cl := outageClient(t, f.http.URL, 2, 200*time.Millisecond)
	_, err := cl.RouteTables(context.Background(), "vpc-alisim0001")
	if err == nil || errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "DescribeRouteTableList") ||
		!strings.Contains(strings.ToLower(err.Error()), "timeout") || !aliyun.Retryable(err) {
		t.Fatalf("1 s latency, 200 ms timeout: %v", err)
	}
	if strings.Contains(err.Error(), "Signature=") || strings.Contains(err.Error(), sim.DefaultAccessKeyID) {
		t.Fatalf("the error quotes the signed request: %v", err)
	}
	f.srv.SetFault("*", sim.Fault{Latency: 50 * time.Millisecond})
	cl = outageClient(t, f.http.URL, 2, 5*time.Second)
	if ts, err := cl.RouteTables(context.Background(), "vpc-alisim0001"); err != nil || len(ts) != 1 {
		t.Fatalf("50 ms latency, 5 s timeout: %v %v", ts, err)
	}
}

// Answers that are not the API's (garbage, truncated JSON, an HTML page, an empty or endless body) give an
// error naming the action and what came back, on every API, never a panic, a hang or an empty result taken
// for the truth; nothing of the signed request (which such a page may echo) reaches the error.
func TestMalformedAnswers(t *testing.T) {
	big := strings.Repeat("x", 9<<20)
	for _, c := range []struct {
		name, ctype string
		status      int
		body        string
		want        string
	}{
		{"garbage", "application/json", 200, "\x00\x01garbage\xff", "not JSON"},
		{"truncated", "application/json", 200, `{"RequestId":"r1","TotalCount":3,"RouterTableList":{"RouterTableListType":[{"RouteTab`, "not JSON"},
		{"html", "text/html", 200, "<html><body>Welcome to nginx! echo: %s</body></html>", "text/html"},
		{"empty", "application/json", 200, "", "empty body"},
		{"empty object", "application/json", 200, "{}", "no RequestId"},
		{"null", "application/json", 200, "null", "no RequestId"},
		{"wrong types", "application/json", 200, `{"RequestId":"r1","TotalCount":"many","RouteEntrys":7,"Quota":"q","InstanceTypes":[]}`, "does not have the shape of a DescribeRouteTableList answer"},
		{"endless", "application/json", 200, big, "over 8388608 bytes"},
		{"html error", "text/html", 502, "<html><title>502 Bad Gateway</title> %s</html>", "HTTP 502: the answer is not the API's error JSON"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var calls atomic.Int32
			s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.Header().Set("Content-Type", c.ctype)
				w.WriteHeader(c.status)
				body := c.body
				if strings.Contains(body, "%s") {
					body = fmt.Sprintf(body, r.URL.String())
				}
				_, _ = w.Write([]byte(body))
			}))
			t.Cleanup(s.Close)
			cl := outageClient(t, s.URL, 2, 5*time.Second)
			ctx := context.Background()
			for _, call := range []struct {
				action string
				do     func() (int, error)
			}{
				{"DescribeRouteTableList", func() (int, error) { ts, err := cl.RouteTables(ctx, "vpc-alisim0001"); return len(ts), err }},
				{"DescribeRouteEntryList", func() (int, error) { es, err := cl.RouteEntries(ctx, table); return len(es), err }},
				{"GetProductQuota", func() (int, error) { return cl.RouteEntryQuota(ctx) }},
				{"DescribeInstanceTypes", func() (int, error) { ts, err := cl.InstanceTypes(ctx); return len(ts), err }},
			} {
				n, err := call.do()
				if err == nil {
					t.Fatalf("%s on %s: no error (%d results)", call.action, c.name, n)
				}
				msg := err.Error()
				if !strings.Contains(msg, call.action) || (call.action == "DescribeRouteTableList" && !strings.Contains(msg, c.want)) {
					t.Fatalf("%s on %s: %v, want the action and %q", call.action, c.name, err, c.want)
				}
				if aliyun.Retryable(err) != (c.status >= 500) {
					t.Fatalf("%s on %s: retryable %v: only a server error status is worth retrying (%v)", call.action, c.name, aliyun.Retryable(err), err)
				}
				if strings.Contains(msg, "Signature") || strings.Contains(msg, sim.DefaultAccessKeyID) || len(msg) > 1000 {
					t.Fatalf("%s on %s: the error quotes the request or the whole body: %.300s", call.action, c.name, msg)
				}
			}
			if calls.Load() == 0 {
				t.Fatal("the server was never called")
			}
		})
	}
}
