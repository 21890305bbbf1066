package alivpc

import (
	"context"
	"errors"
	"testing"
	"time"
)

type fakeQuota struct {
	v     int
	err   error
	calls int
}

func (f *fakeQuota) RouteEntryQuota(context.Context) (int, error) { f.calls++; return f.v, f.err }

func TestQuotaSource(t *testing.T) {
	api := &fakeQuota{v: 1000}
	q := &quotaSource{api: api, configured: 200, refresh: 5 * time.Minute}
	t0 := time.Unix(1e9, 0)
	if v, src := q.get(context.Background(), t0); v != 1000 || src != quotaFromAPI {
		t.Fatalf("got %d from %s, want the API's 1000", v, src)
	}
	api.v = 12
	if v, _ := q.get(context.Background(), t0.Add(time.Minute)); v != 1000 || api.calls != 1 {
		t.Fatalf("got %d after %d calls: the figure is cached within the refresh", v, api.calls)
	}
	if v, _ := q.get(context.Background(), t0.Add(6*time.Minute)); v != 12 {
		t.Fatalf("got %d, want the lowered quota after the refresh", v)
	}
	api.err = errors.New("Forbidden.RAM")
	if v, src := q.get(context.Background(), t0.Add(12*time.Minute)); v != 200 || src != quotaFromConfig {
		t.Fatalf("API refused: got %d from %s, want the configured 200", v, src)
	}
	api.err, api.v = nil, 0
	if v, src := q.get(context.Background(), t0.Add(18*time.Minute)); v != 200 || src != quotaFromConfig {
		t.Fatalf("API answered 0: got %d from %s, want the configured figure", v, src)
	}
}
