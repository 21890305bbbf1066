package backoff

import (
	"context"
	"testing"
	"time"
)

func TestNextGrowsWithinBounds(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	steps := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, s := range steps {
		s *= time.Millisecond
		d := b.Next()
		if d < s/2 || d > s {
			t.Fatalf("step %d: %v not within [%v, %v]", i, d, s/2, s)
		}
	}
	b.Reset()
	if d := b.Next(); d > 100*time.Millisecond {
		t.Fatalf("after Reset: %v, want at most Min", d)
	}
}

func TestZeroValueAndBadBounds(t *testing.T) {
	var b Backoff
	if d := b.Next(); d < DefaultMin/2 || d > DefaultMin {
		t.Fatalf("zero value first delay %v", d)
	}
	for range 100 {
		if d := b.Next(); d > DefaultMax || d <= 0 {
			t.Fatalf("zero value delay %v out of (0, %v]", d, DefaultMax)
		}
	}
	inv := Backoff{Min: time.Second, Max: time.Millisecond} // Max < Min: Min wins, never overflows
	for range 100 {
		if d := inv.Next(); d > time.Second || d < time.Second/2 {
			t.Fatalf("inverted bounds delay %v", d)
		}
	}
	huge := Backoff{Min: time.Hour, Max: 1<<63 - 1}
	for range 80 {
		if d := huge.Next(); d <= 0 {
			t.Fatalf("overflowed to %v", d)
		}
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); err != context.Canceled {
		t.Fatalf("Sleep on a cancelled context = %v", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
	b := Backoff{Min: time.Hour}
	if err := b.Wait(ctx); err != context.Canceled {
		t.Fatalf("Wait on a cancelled context = %v", err)
	}
}

func TestJitter(t *testing.T) {
	for range 100 {
		if d := Jitter(time.Second, 0.2); d < 800*time.Millisecond || d > 1200*time.Millisecond {
			t.Fatalf("Jitter = %v", d)
		}
	}
	if Jitter(time.Second, 0) != time.Second || Jitter(0, 0.5) != 0 || Jitter(time.Second, -1) != time.Second {
		t.Fatal("Jitter with no spread must return d")
	}
	if d := Jitter(time.Second, 5); d < 0 || d > 2*time.Second {
		t.Fatalf("Jitter clamps f: %v", d)
	}
}
