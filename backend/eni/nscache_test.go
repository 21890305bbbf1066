package eni

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type countingNamespaces struct {
	calls atomic.Int32
	mu    sync.Mutex
	ann   map[string]string
	err   error
	gate  chan struct{} // when set, reads wait for it
}

func (c *countingNamespaces) Annotations(ctx context.Context, name string) (map[string]string, error) {
	c.calls.Add(1)
	if c.gate != nil {
		<-c.gate
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	out := map[string]string{}
	for k, v := range c.ann {
		out[k] = v
	}
	return out, nil
}

type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (s *stepClock) Now() time.Time { s.mu.Lock(); defer s.mu.Unlock(); return s.now }
func (s *stepClock) add(d time.Duration) {
	s.mu.Lock()
	s.now = s.now.Add(d)
	s.mu.Unlock()
}

// A burst of pod starts in one namespace reads the Namespace once; the answer is reused for the TTL, then read
// again (a changed annotation applies); an error is not kept; callers cannot change the cached map.
func TestCachedNamespaces(t *testing.T) {
	inner := &countingNamespaces{ann: map[string]string{AnnotationVSwitches: "vsw-a"}, gate: make(chan struct{})}
	clk := &stepClock{now: time.Unix(1000, 0)}
	c := newCachedNamespaces(inner, clk)
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := c.Annotations(context.Background(), "team")
			if err != nil || a[AnnotationVSwitches] != "vsw-a" {
				t.Errorf("burst read: %v %v", a, err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(inner.gate)
	wg.Wait()
	if n := inner.calls.Load(); n != 1 {
		t.Fatalf("100 concurrent pod starts in one namespace made %d reads, want 1", n)
	}
	a, _ := c.Annotations(context.Background(), "team")
	a[AnnotationVSwitches] = "changed by a caller"
	if b, _ := c.Annotations(context.Background(), "team"); b[AnnotationVSwitches] != "vsw-a" || inner.calls.Load() != 1 {
		t.Fatalf("cached answer %v after %d reads, want vsw-a from the one read", b, inner.calls.Load())
	}
	inner.mu.Lock()
	inner.ann[AnnotationVSwitches] = "vsw-b"
	inner.mu.Unlock()
	clk.add(nsCacheTTL)
	if b, _ := c.Annotations(context.Background(), "team"); b[AnnotationVSwitches] != "vsw-b" || inner.calls.Load() != 2 {
		t.Fatalf("after the TTL: %v after %d reads, want vsw-b from a second read", b, inner.calls.Load())
	}
	if _, err := c.Annotations(context.Background(), "other"); err != nil || inner.calls.Load() != 3 {
		t.Fatalf("another namespace: %v, %d reads", err, inner.calls.Load())
	}
	inner.mu.Lock()
	inner.err = errors.New("apiserver down")
	inner.mu.Unlock()
	clk.add(nsCacheTTL)
	for i := 0; i < 2; i++ {
		if _, err := c.Annotations(context.Background(), "team"); err == nil {
			t.Fatal("an error read as annotations")
		}
	}
	if n := inner.calls.Load(); n != 5 {
		t.Fatalf("%d reads, want 5: an error must not be cached", n)
	}
}
