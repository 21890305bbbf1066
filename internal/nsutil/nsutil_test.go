package nsutil

import (
	"errors"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestDoRunsInsideAndSurvivesGoexit(t *testing.T) {
	// testenv.RequireRoot cannot be used here (testenv imports this package); its rule: skip under -short, else need root.
	if testing.Short() {
		t.Skip("privileged test (needs root): not part of the unit tier (-short)")
	} else if os.Geteuid() != 0 {
		t.Fatal("this test needs root: run `make test` as root, or `make test-unit` (go test -short) for the unit tier")
	}
	runtime.LockOSThread()
	orig, _ := netns.Get()
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	_ = netns.Set(orig)
	runtime.UnlockOSThread()
	defer ns.Close()
	defer orig.Close()
	if err := Do(ns, func() error {
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "nsutil0"}, PeerName: "nsutil1"})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName("nsutil0"); err == nil {
		t.Fatal("the link was made in the test's own namespace")
	}
	h, _ := netlink.NewHandleAt(ns)
	defer h.Close()
	if _, err := h.LinkByName("nsutil0"); err != nil {
		t.Fatalf("the link is not in the namespace: %v", err)
	}
	if err := Do(ns, func() error { runtime.Goexit(); return nil }); !errors.Is(err, errExited) {
		t.Fatalf("Goexit inside Do: %v", err)
	}
}
