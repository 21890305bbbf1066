package daemon

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftnet/weft/internal/metrics"
)

// A store that stops answering after start-up turns /readyz (and weft_ready) to not ready with a reason naming
// the store, and back to ready without a restart once it answers again; the backend's own readiness still wins
// when the store is fine.
func TestReadyzFollowsStore(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "etcd")
	r := &readiness{reason: "starting", onSet: m.SetReady}
	h := healthHandler(r, reg)
	r.set(true, "")

	var down atomic.Bool
	probe := func(ctx context.Context) error {
		if down.Load() {
			return errors.New("context deadline exceeded")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { followStore(ctx, r, "etcd", probe, 10*time.Millisecond, time.Second); close(done) }()
	defer func() { cancel(); <-done }()

	await := func(what string, want func(int, string) bool) {
		t.Helper()
		var code int
		var body string
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if code, body = get(t, h, "/readyz"); want(code, body) {
				return
			}
		}
		t.Fatalf("%s: /readyz = %d %q", what, code, body)
	}
	down.Store(true)
	await("store down", func(code int, body string) bool {
		return code == 503 && strings.Contains(body, "etcd store unreachable: context deadline exceeded")
	})
	if _, text := get(t, h, "/metrics"); !strings.Contains(text, "weft_ready 0") {
		t.Errorf("weft_ready not 0 while the store is down")
	}
	down.Store(false)
	await("store back", func(code int, body string) bool { return code == 200 && body == "ok" })
	if _, text := get(t, h, "/metrics"); !strings.Contains(text, "weft_ready 1") {
		t.Errorf("weft_ready not 1 once the store answers")
	}
	r.set(false, "ali-vpc: route not yet in the table")
	await("backend not ready, store fine", func(code int, body string) bool {
		return code == 503 && strings.Contains(body, "route not yet in the table")
	})
}
