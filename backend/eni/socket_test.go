package eni

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// A socket path that is a directory (a careless hostPath mount): weftd cannot serve the plugin, so the node is not
// ready, and /readyz (Ready) says why, instead of 200 while every pod's ADD fails with "weftd is not serving".
func TestSocketPathIsADirectoryIsNotReady(t *testing.T) {
	if !runInFreshNetns(t) {
		return
	}
	e := newHandlerEnv(t, `,"min_pool_size":1,"warm_pool_target":1,"max_pool_size":2`)
	if err := os.MkdirAll(e.n.cfg.Socket, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.n.serve(ctx)
	var ok bool
	var why string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if e.n.pool.Stats().Idle > 0 { // an address is there: only the socket stands in the way
			ok, why = e.n.Ready()
			break
		}
	}
	if ok || !strings.Contains(why, e.n.cfg.Socket) {
		t.Errorf("Ready() = %v, %q with the CNI socket unservable, want false naming %s", ok, why, e.n.cfg.Socket)
	}
}
