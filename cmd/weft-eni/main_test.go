package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/eni/cniproto"
)

// statusHandler answers STATUS with err; nothing else is asked here (ADD, DEL and GC reach the host's netlink).
type statusHandler struct{ notReady atomic.Bool }

func (h *statusHandler) Add(context.Context, cniproto.AddRequest) (cniproto.AddReply, error) {
	return cniproto.AddReply{}, errors.New("not in this test")
}
func (h *statusHandler) Del(context.Context, cniproto.DelRequest) error {
	return errors.New("not in this test")
}
func (h *statusHandler) Check(context.Context, cniproto.CheckRequest) error {
	return errors.New("not in this test")
}
func (h *statusHandler) GC(context.Context, cniproto.GCRequest) error {
	return errors.New("not in this test")
}
func (h *statusHandler) Status(context.Context) error {
	if h.notReady.Load() {
		return &cniproto.Error{Code: cniproto.CodeNotReady, Message: "no usable ENI yet"}
	}
	return nil
}

// The binary speaks CNI through skel: VERSION lists 1.0.0 and 1.1.0, STATUS asks weftd and answers error 50
// when weftd is not ready or not there.
func TestBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "weft-eni")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	run := func(cmd, conf string) (string, error) {
		c := exec.Command(bin)
		c.Env = []string{"CNI_COMMAND=" + cmd, "CNI_PATH=" + dir}
		c.Stdin = strings.NewReader(conf)
		var out bytes.Buffer
		c.Stdout = &out
		err := c.Run()
		return out.String(), err
	}
	out, err := run("VERSION", `{"cniVersion":"1.1.0"}`)
	var v struct{ SupportedVersions []string }
	if err != nil || json.Unmarshal([]byte(out), &v) != nil || strings.Join(v.SupportedVersions, ",") != "1.0.0,1.1.0" {
		t.Fatalf("VERSION: %s %v", out, err)
	}

	sock := filepath.Join(dir, "run", "eni.sock")
	h := &statusHandler{}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- cniproto.Serve(ctx, sock, h) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i == 500 {
			t.Fatal("no socket")
		}
		time.Sleep(10 * time.Millisecond)
	}
	conf := func(socket string) string {
		return `{"cniVersion":"1.1.0","name":"weft","type":"weft-eni","socket":"` + socket + `"}`
	}
	if out, err := run("STATUS", conf(sock)); err != nil {
		t.Errorf("STATUS with weftd ready: %s %v", out, err)
	}
	h.notReady.Store(true)
	for _, c := range []struct{ socket, want string }{{sock, "no usable ENI yet"}, {filepath.Join(dir, "none.sock"), "none.sock"}} {
		out, err := run("STATUS", conf(c.socket))
		var e struct {
			Code uint
			Msg  string
		}
		if err == nil || json.Unmarshal([]byte(out), &e) != nil || e.Code != 50 || !strings.Contains(e.Msg, c.want) {
			t.Errorf("STATUS at %s: %s %v, want error 50 saying %q", c.socket, out, err, c.want)
		}
	}
}
