package cniproto

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// A daemon that dies after taking the request (before answering, or halfway through the answer) is
// ErrInterrupted, so the plugin says "try again later" rather than failing the pod for good; a daemon that is not
// there at all stays ErrUnreachable, and one that answers garbage is neither.
func TestClientInterrupted(t *testing.T) {
	for _, c := range []struct {
		name        string
		answer      string // written after the request was read, then the connection closes
		interrupted bool
	}{
		{"closed before answering", "", true},
		{"closed after the status line", "HTTP/1.1 200 OK\r\n", true},
		{"closed inside the body", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"version\":", true},
		{"a whole answer that is not JSON", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "eni.sock")
			ln, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
				if _, err := http.ReadRequest(bufio.NewReader(conn)); err != nil {
					return
				}
				_, _ = conn.Write([]byte(c.answer))
			}()
			cl := &Client{Socket: sock, Timeout: 10 * time.Second}
			_, err = cl.Add(context.Background(), AddRequest{Pod: PodID{ContainerID: "c1", Netns: "/var/run/netns/x", IfName: "eth0",
				Namespace: "default", Name: "p"}})
			if err == nil {
				t.Fatal("no error from a daemon that did not answer")
			}
			if got := errors.Is(err, ErrInterrupted); got != c.interrupted {
				t.Fatalf("errors.Is(%v, ErrInterrupted) = %v, want %v", err, got, c.interrupted)
			}
			if errors.Is(err, ErrUnreachable) {
				t.Fatalf("%v: the daemon was reached", err)
			}
		})
	}
}
