package cniproto

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An ADD the handler completes only after the server has answered Timeout (the allocation and its checkpoint
// finished just past the deadline) gave the pod an address nobody was told of: the plugin saw a failure and built
// no datapath. The server gives it back with the handler's Del, before the pod is free for the runtime's retry
// (whose ADD would otherwise get that address and then lose it to the late Del).
func TestAddCompletedAfterTheDeadlineIsGivenBack(t *testing.T) {
	h := &testHandler{reply: goodReply(), block: make(chan struct{}), started: make(chan string, 10)}
	sock := serve(t, h)
	c := &Client{Socket: sock, Timeout: 300 * time.Millisecond}
	_, err := c.Add(context.Background(), AddRequest{Pod: pod("late")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow handler: %v, want context.DeadlineExceeded", err)
	}
	if v := <-h.started; v != "add" {
		t.Fatalf("first call %q", v)
	}
	close(h.block) // the allocation completes now, after the answer
	select {
	case v := <-h.started:
		if v != "del" {
			t.Fatalf("after the late ADD the handler got %q, want the Del that gives the address back", v)
		}
	case <-time.After(20 * time.Second): // a hang guard, not a timing assertion
		t.Fatal("the late ADD's address was never given back (no Del)")
	}
	// The pod is busy until the address is given back, then free: the runtime's retry is served afresh.
	c.Timeout = 10 * time.Second
	var reply AddReply
	for {
		reply, err = c.Add(context.Background(), AddRequest{Pod: pod("late")})
		var e *Error
		if errors.As(err, &e) && e.Code == CodeBusy {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		break
	}
	if err != nil || reply.IP != goodReply().IP {
		t.Fatalf("retried ADD: %+v %v", reply, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.dels) != 1 || h.dels[0].Pod != pod("late") || h.dels[0].IP != goodReply().IP {
		t.Errorf("Dels %+v, want one for the late ADD's address", h.dels)
	}
	want := []string{"add", "del", "add"}
	if len(h.calls) != len(want) || h.calls[0] != "add" || h.calls[1] != "del" || h.calls[2] != "add" {
		t.Errorf("calls %v, want %v (the give-back before the retry)", h.calls, want)
	}
}

// A failed or refused ADD is not given back (there is nothing to give), and an ADD answered in time is kept.
func TestAddAnsweredInTimeIsKept(t *testing.T) {
	h := &testHandler{reply: goodReply()}
	c := &Client{Socket: serve(t, h), Timeout: 10 * time.Second}
	if _, err := c.Add(context.Background(), AddRequest{Pod: pod("ok")}); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.err = &Error{Code: CodeLimit, Message: "full"}
	h.mu.Unlock()
	if _, err := c.Add(context.Background(), AddRequest{Pod: pod("full")}); err == nil {
		t.Fatal("refused ADD succeeded")
	}
	time.Sleep(50 * time.Millisecond) // a give-back would run in the background: give it the chance to show
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.dels) != 0 {
		t.Errorf("Dels %+v after ADDs answered in time", h.dels)
	}
}

// Listen tells at once whether the socket can be made (a directory in its place: no), and ServeListener serves
// what it made.
func TestListenThenServe(t *testing.T) {
	dir := t.TempDir()
	if _, err := Listen(dir); err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen on a directory: %v, want an error naming it", err)
	}
	sock := filepath.Join(dir, "run", "eni.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, &testHandler{reply: goodReply()}) }()
	c := &Client{Socket: sock, Timeout: 10 * time.Second}
	if err := c.Status(context.Background()); err != nil {
		t.Errorf("STATUS on ServeListener: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeListener: %v", err)
	}
}
