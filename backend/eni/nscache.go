package eni

import (
	"context"
	"maps"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/weftnet/weft/internal/eni/pool"
)

// nsCacheTTL is how long a Namespace's annotations are reused: a burst of pod starts in one namespace costs one
// GET, not one per pod (client-go's client-side rate limit queued a 100-pod burst for 18 s, and every pod start
// was a request to the API server). A changed Namespace annotation applies to pods started after the TTL.
const nsCacheTTL = 10 * time.Second

// cachedNamespaces is a Namespaces that reuses an answer for nsCacheTTL and lets concurrent misses for one
// namespace share one read. Errors are not cached: the next ADD asks again.
type cachedNamespaces struct {
	inner Namespaces
	clock pool.Clock
	ttl   time.Duration

	group singleflight.Group
	mu    sync.Mutex
	cache map[string]nsEntry
}

type nsEntry struct {
	ann map[string]string
	at  time.Time
}

func newCachedNamespaces(inner Namespaces, clock pool.Clock) *cachedNamespaces {
	if clock == nil {
		clock = realClock{}
	}
	return &cachedNamespaces{inner: inner, clock: clock, ttl: nsCacheTTL, cache: map[string]nsEntry{}}
}

// Annotations implements Namespaces. The map returned is the caller's.
func (c *cachedNamespaces) Annotations(ctx context.Context, name string) (map[string]string, error) {
	now := c.clock.Now()
	c.mu.Lock()
	e, ok := c.cache[name]
	if ok && now.Sub(e.at) < c.ttl {
		c.mu.Unlock()
		return maps.Clone(e.ann), nil
	}
	if len(c.cache) > 4096 { // bounded: namespaces come and go
		clear(c.cache)
	}
	c.mu.Unlock()
	v, err, _ := c.group.Do(name, func() (any, error) {
		ann, err := c.inner.Annotations(ctx, name)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.cache[name] = nsEntry{ann: ann, at: now}
		c.mu.Unlock()
		return ann, nil
	})
	if err != nil {
		return nil, err
	}
	return maps.Clone(v.(map[string]string)), nil
}
