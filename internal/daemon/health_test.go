package daemon

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftnet/weft/internal/metrics"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func TestHealthEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "etcd")
	r := &readiness{reason: "starting", onSet: m.SetReady}
	h := healthHandler(r, reg)

	if code, body := get(t, h, "/healthz"); code != 200 || body != "flanneld is running" {
		t.Errorf("/healthz = %d %q, want upstream's 200 \"flanneld is running\"", code, body)
	}
	r.set(false, "get network config from etcd: connection refused")
	if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, "connection refused") {
		t.Errorf("/readyz before ready = %d %q, want 503 with the reason", code, body)
	}
	_, metricsText := get(t, h, "/metrics")
	if !strings.Contains(metricsText, "weft_ready 0") || !strings.Contains(metricsText, `weft_build_info{`) {
		t.Errorf("/metrics lacks weft_ready 0 or weft_build_info:\n%s", metricsText)
	}
	// /readyz is unauthenticated: credentials in an error (an endpoint URL's userinfo) never reach it.
	r.set(false, `get network config from etcd: dial "http://bob:hunter2@10.0.0.1:2379": connection refused`)
	if code, body := get(t, h, "/readyz"); code != 503 || strings.Contains(body, "hunter2") || !strings.Contains(body, "http://<redacted>@10.0.0.1:2379") {
		t.Errorf("/readyz = %d %q, want 503 with the endpoint redacted", code, body)
	}
	r.set(true, "")
	if code, _ := get(t, h, "/readyz"); code != 200 {
		t.Errorf("/readyz when ready = %d, want 200", code)
	}
	m.Reconciled("vxlan", 0.01, nil)
	m.LeaseEvent("added")
	_, metricsText = get(t, h, "/metrics")
	for _, want := range []string{"weft_ready 1", `weft_reconcile_duration_seconds_count{backend="vxlan"} 1`,
		`weft_lease_events_total{type="added"} 1`, `weft_reconcile_errors_total{backend="vxlan"} 0`} {
		if !strings.Contains(metricsText, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
