package daemon

import (
	"context"
	"time"
)

// How often, and how patiently, a running weftd checks that its store answers. A stopped store does not break
// the lease watch (the etcd client and client-go retry silently), so without a probe an outage would go unseen.
const (
	storeProbeEvery   = 5 * time.Second
	storeProbeTimeout = 5 * time.Second
)

// followStore probes the store every period until ctx ends; while probes fail /readyz answers 503 naming the
// store and the error, and the first probe that succeeds makes it ready again. name is the store ("etcd",
// "kube").
func followStore(ctx context.Context, ready *readiness, name string, probe func(context.Context) error, every, timeout time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			ready.setStore(name + " store unreachable: " + err.Error())
			continue
		}
		ready.setStore("")
	}
}
