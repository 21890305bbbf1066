// Package cniwait is how a CNI ADD waits for its pod's NetworkPolicy rules: weftd serves a unix socket beside
// subnet.env (SocketPath) while its policy engine runs, and the plugin, once the pod has its addresses, posts the
// pod's namespace, name and addresses and returns only when weftd answers that the rules are in the kernel. No
// socket file means no engine (policy off, or upstream flanneld on the node): the plugin goes on. A socket that
// does not answer (weftd restarting) fails the ADD, which the kubelet retries: a pod never starts unprotected.
// weftd touches the socket after it writes subnet.env (Touch), so a subnet.env newer than the socket was written
// by another daemon (upstream flanneld back on the node after weftd): the socket is stale and ADDs go on (Active).
package cniwait

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// SocketPath is the socket beside the subnet file (/run/flannel/policy.sock for the default).
func SocketPath(subnetFile string) string {
	return filepath.Join(filepath.Dir(subnetFile), "policy.sock")
}

// Request is a pod announced by a CNI ADD.
type Request struct {
	Namespace string       `json:"namespace"`
	Name      string       `json:"name"`
	IPs       []netip.Addr `json:"ips"`
}

// Limits of a request.
const (
	maxBody  = 4096
	maxIPs   = 2
	maxLabel = 253
)

func (r Request) validate() error {
	switch {
	case r.Namespace == "" || len(r.Namespace) > 63:
		return fmt.Errorf("namespace %q: expected 1..63 characters", clip(r.Namespace))
	case r.Name == "" || len(r.Name) > maxLabel:
		return fmt.Errorf("name %q: expected 1..%d characters", clip(r.Name), maxLabel)
	case len(r.IPs) == 0 || len(r.IPs) > maxIPs:
		return fmt.Errorf("ips: %d addresses, expected 1 or 2", len(r.IPs))
	}
	for _, ip := range r.IPs {
		if !ip.IsValid() || ip.Zone() != "" {
			return fmt.Errorf("ips: %v: expected an IPv4 or IPv6 address", ip)
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Ensure is the engine's answer to a request (engine.Engine.Ensure); ErrNoSuchPod-like errors are the caller's to
// map through Unknown.
type Ensure func(ctx context.Context, namespace, name string, ips []netip.Addr) error

// Server answers requests on a unix socket.
type Server struct {
	Ensure  Ensure
	Unknown func(error) bool // an Ensure error meaning the API has no such pod: answered "no policy applies"
	Timeout time.Duration    // per request (default 60 s)
}

// Listen makes the socket at path (replacing a stale one), for Serve. The socket file is left behind when weftd
// exits, so that ADDs while weftd restarts fail instead of going on unprotected.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("network policy socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("network policy socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("network policy socket: %w", err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("network policy socket: %w", err)
	}
	return l, nil
}

// Serve answers requests on l until ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: http.HandlerFunc(s.handle), ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("network policy socket: %w", err)
	}
	return nil
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/pod" {
		http.Error(w, "expected POST /v1/pod", http.StatusNotFound)
		return
	}
	var req Request
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		http.Error(w, "request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := req.validate(); err != nil {
		http.Error(w, "request: "+err.Error(), http.StatusBadRequest)
		return
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	err := s.Ensure(ctx, req.Namespace, req.Name, req.IPs)
	switch {
	case err == nil:
		w.WriteHeader(http.StatusOK)
	case s.Unknown != nil && s.Unknown(err):
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, "no policy applies: %v", err)
	default:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	}
}

// Touch marks the socket as newer than the subnet file weftd has just written.
func Touch(path string) error {
	now := time.Now()
	return os.Chtimes(path, now, now)
}

// Active says whether ADDs must wait on the socket at path: it exists and is not older than subnetFile (when
// that exists), else another daemon wrote subnet.env after weftd last ran.
func Active(path, subnetFile string) bool {
	s, err := os.Stat(path)
	if err != nil {
		return false
	}
	e, err := os.Stat(subnetFile)
	return err != nil || !s.ModTime().Before(e.ModTime())
}

// Wait posts the pod to the socket at path and returns once weftd says its rules are in place; nil at once when
// there is no socket file (no policy engine on this node).
func Wait(ctx context.Context, path string, req Request) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := req.validate(); err != nil {
		return fmt.Errorf("network policy: %w", err)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://weftd/v1/pod", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := c.Do(hr)
	if err != nil {
		return fmt.Errorf("network policy: weftd's socket %s does not answer (is weftd running?): %w", path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("network policy: weftd: %s", bytes.TrimSpace(msg))
	}
	return nil
}
