package testenv

import (
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/weftnet/weft/internal/nsutil"
)

// NewNetns creates an anonymous network namespace for one test (it vanishes when the test's handles close) and a
// netlink handle into it. The calling thread is left in its original namespace.
func NewNetns(t testing.TB) (netns.NsHandle, *netlink.Handle) {
	t.Helper()
	RequireRoot(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Fatalf("new netns: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatalf("restore netns: %v", err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); ns.Close() })
	lo, err := h.LinkByName("lo")
	if err == nil {
		_ = h.LinkSetUp(lo)
	}
	return ns, h
}

// InNetns runs fn on a thread inside ns (child processes started by fn inherit it) and waits for it.
func InNetns(t testing.TB, ns netns.NsHandle, fn func()) {
	t.Helper()
	if err := nsutil.Do(ns, func() error { fn(); return nil }); err != nil && !t.Failed() {
		t.Fatal(err)
	}
}
