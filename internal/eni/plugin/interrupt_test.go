package plugin

import (
	"bufio"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// weftd dying with the request in hand (a restart, an OOM kill) is "try again later" (11), as kubelet then
// retries the sandbox, not an internal error (999) that reads as the plugin's own failure.
func TestAddWeftdGoneMidRequest(t *testing.T) {
	e := newEnv(t)
	sock := filepath.Join(t.TempDir(), "dying.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = http.ReadRequest(bufio.NewReader(conn))
			conn.Close()
		}
	}()
	te := cniErr(t, e.p.Add(e.args("g1", e.conf(map[string]any{"socket": sock}))))
	if te.Code != types.ErrTryAgainLater || !strings.Contains(te.Msg, "went away") {
		t.Fatalf("ADD with weftd gone mid-request: code %d %q, want %d naming it", te.Code, te.Error(), types.ErrTryAgainLater)
	}
	e.dp.mu.Lock()
	defer e.dp.mu.Unlock()
	if len(e.dp.pods) != 0 {
		t.Fatalf("datapath built without an answer: %v", e.dp.pods)
	}
}
