package eni

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/eni/cniproto"
)

// fakePolicy records the pods an ADD waits for and refuses the one named refuse.
type fakePolicy struct {
	mu     sync.Mutex
	seen   map[string][]netip.Addr
	refuse string
}

func (f *fakePolicy) Ensure(_ context.Context, ns, name string, ips []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen[ns+"/"+name] = ips
	if name == f.refuse {
		return errors.New("network policy: the last sync failed: nft: Operation not permitted")
	}
	return nil
}

// A shared-mode ADD answers only once the policy engine has the pod's rules for its address; when the engine
// cannot, the ADD fails NotReady and the address goes back to the pool.
func TestHandlerWaitsForPolicy(t *testing.T) {
	if !runInFreshNetns(t) {
		return
	}
	e := newHandlerEnv(t, "", testPod("web", testNode), testPod("refused", testNode))
	pol := &fakePolicy{seen: map[string][]netip.Addr{}, refuse: "refused"}
	e.n.d.deps.Policy = pol
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := e.n.Add(ctx, addReq("web"))
	if err != nil {
		t.Fatal(err)
	}
	if got := pol.seen["default/web"]; len(got) != 1 || got[0] != r.IP {
		t.Errorf("the engine was asked for %v, the pod got %v", got, r.IP)
	}
	before := e.n.pool.Stats().Assigned
	_, err = e.n.Add(ctx, addReq("refused"))
	var pe *cniproto.Error
	if !errors.As(err, &pe) || pe.Code != cniproto.CodeNotReady || !strings.Contains(pe.Message, "Operation not permitted") {
		t.Fatalf("ADD the engine refuses: %v", err)
	}
	if st := e.n.pool.Stats(); st.Assigned != before {
		t.Errorf("the refused ADD kept its address: %d assigned, %d before", st.Assigned, before)
	}
}
