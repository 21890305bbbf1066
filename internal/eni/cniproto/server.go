package cniproto

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
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

const (
	// MaxBody bounds a request's and a reply's body.
	MaxBody = 64 << 10
	// MaxTimeout is the longest a request may run, whatever its Weft-Timeout says.
	MaxTimeout = 10 * time.Minute
	// TimeoutHeader carries the client's deadline as a Go duration ("119.998s").
	TimeoutHeader = "Weft-Timeout"
)

// shutdownGrace is how long Serve waits for running requests once its context ends; tests shorten it.
var shutdownGrace = 5 * time.Second

// Serve serves h on a unix socket at path until ctx ends, then stops accepting, waits up to a few seconds for the
// requests running, and returns nil. The parent directory is created (0700) when missing; the socket is 0600. A
// socket file left by a dead process is removed; one a live process answers on is refused, and so is a path that
// is not a socket. Any other failure to listen or serve is returned.
func Serve(ctx context.Context, path string, h Handler) error {
	if h == nil {
		return errors.New("cniproto: Serve needs a Handler")
	}
	ln, err := Listen(path)
	if err != nil {
		return err
	}
	return ServeListener(ctx, ln, h)
}

// Listen makes the socket Serve serves (see Serve for the directory, a stale socket, the mode): a caller that
// must know whether the plugin can reach it (readiness) listens first and serves the listener with ServeListener.
func Listen(path string) (net.Listener, error) { return listen(path) }

// ServeListener is Serve on a listener made by Listen, which it closes; it returns when ctx ends (nil) or the
// listener fails.
func ServeListener(ctx context.Context, ln net.Listener, h Handler) error {
	if h == nil {
		ln.Close()
		return errors.New("cniproto: Serve needs a Handler")
	}
	path := ln.Addr().String()
	base, cancelAll := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelAll()
	s := &server{h: h, busy: map[string]bool{}, base: base}
	mux := http.NewServeMux()
	for verb := range verbs {
		mux.HandleFunc("/v1/"+verb, func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, verb) })
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, badRequest("%s: unknown path, expected /v1/add, /v1/del, /v1/check, /v1/status or /v1/gc", clip(r.URL.Path)))
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    8 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		cancelAll()
		s.wait(shutdownGrace)
		return fmt.Errorf("serve %s: %w", path, err)
	case <-ctx.Done():
	}
	grace, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(grace); err != nil {
		klog.Warningf("cniproto: %s: requests still running after %v: cancelling them", path, shutdownGrace)
	}
	cancelAll()
	_ = srv.Close()
	<-served
	s.wait(time.Second)
	return nil
}

// listen makes the socket: directory, stale socket, mode.
func listen(path string) (net.Listener, error) {
	if path == "" || !filepath.IsAbs(path) {
		return nil, fmt.Errorf("cniproto: socket %q: expected an absolute path", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("socket %s: exists and is not a socket (%v): not removing it", path, fi.Mode().Type())
		}
		c, derr := net.DialTimeout("unix", path, time.Second)
		if derr == nil {
			c.Close()
			return nil, fmt.Errorf("socket %s: another process serves it (is another weftd running?)", path)
		}
		if !errors.Is(derr, syscall.ECONNREFUSED) && !errors.Is(derr, fs.ErrNotExist) {
			return nil, fmt.Errorf("socket %s: cannot tell whether it is stale: %w", path, derr)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
		klog.Infof("cniproto: removed the stale socket %s", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	return ln, nil
}

type server struct {
	h    Handler
	base context.Context // ends when Serve stops waiting for handlers
	mu   sync.Mutex
	busy map[string]bool // ContainerID/IfName of the requests running
	wg   sync.WaitGroup  // handler calls running
}

func (s *server) acquire(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy[key] {
		return false
	}
	s.busy[key] = true
	return true
}

func (s *server) release(key string) {
	s.mu.Lock()
	delete(s.busy, key)
	s.mu.Unlock()
}

// wait waits for the handler calls, at most d.
func (s *server) wait(d time.Duration) {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

var verbs = map[string]bool{"add": true, "del": true, "check": true, "status": true, "gc": true}

// statusRequest is STATUS's body: only the Version.
type statusRequest struct{ Version string }

// okReply is the answer of every verb but ADD.
type okReply struct{ Version string }

// errorReply is the body of a failure.
type errorReply struct {
	Version string
	Error   *Error
}

// decodeRequest decodes and validates the body of a request to verb: one JSON object with only the verb's fields,
// the current Version, and valid values. It returns AddRequest, DelRequest, CheckRequest, GCRequest or nil (status).
func decodeRequest(verb string, body []byte) (any, *Error) {
	var req any
	var version *string
	switch verb {
	case "add":
		r := &AddRequest{}
		req, version = r, &r.Version
	case "del":
		r := &DelRequest{}
		req, version = r, &r.Version
	case "check":
		r := &CheckRequest{}
		req, version = r, &r.Version
	case "gc":
		r := &GCRequest{}
		req, version = r, &r.Version
	case "status":
		r := &statusRequest{}
		req, version = r, &r.Version
	default:
		return nil, badRequest("unknown request %q", clip(verb))
	}
	if len(body) > MaxBody {
		return nil, badRequest("request body of %d bytes, expected at most %d", len(body), MaxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		// A request of another version may not decode at all: say so rather than name a field.
		var probe struct{ Version string }
		if json.Unmarshal(body, &probe) == nil && probe.Version != Version {
			return nil, checkVersion(probe.Version)
		}
		return nil, badRequest("%s request: %v", verb, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest("%s request: data after the JSON object", verb)
	}
	if e := checkVersion(*version); e != nil {
		return nil, e
	}
	var err error
	switch r := req.(type) {
	case *AddRequest:
		err, req = r.validate(), *r
	case *DelRequest:
		err, req = r.validate(), *r
	case *CheckRequest:
		err, req = r.validate(), *r
	case *GCRequest:
		err, req = r.validate(), *r
	case *statusRequest:
		req = nil
	}
	if err != nil {
		return nil, badRequest("%s request: %v", verb, err)
	}
	return req, nil
}

// busyKey is the pod a request is about ("" for STATUS and GC).
func busyKey(req any) (key, what string) {
	var p PodID
	switch r := req.(type) {
	case AddRequest:
		p = r.Pod
	case DelRequest:
		p = r.Pod
	case CheckRequest:
		p = r.Pod
	default:
		return "", ""
	}
	return p.ContainerID + "/" + p.IfName, fmt.Sprintf("container %s interface %s", p.ContainerID, p.IfName)
}

func (s *server) call(ctx context.Context, req any) (any, error) {
	switch r := req.(type) {
	case AddRequest:
		reply, err := s.h.Add(ctx, r)
		if err != nil {
			return nil, err
		}
		if verr := reply.validate(); verr != nil {
			// The plugin never learns of this address: give it back, as for an answer that cannot be delivered.
			if derr := s.h.Del(context.WithoutCancel(ctx), DelRequest{Version: Version, Pod: r.Pod, IP: reply.IP}); derr != nil {
				verr = fmt.Errorf("%w (and giving it back failed: %v)", verr, derr)
			}
			return nil, &Error{Code: CodeInternal, Message: "the handler's ADD reply: " + verr.Error()}
		}
		reply.Version = Version
		return reply, nil
	case DelRequest:
		return okReply{Version}, s.h.Del(ctx, r)
	case CheckRequest:
		return okReply{Version}, s.h.Check(ctx, r)
	case GCRequest:
		return okReply{Version}, s.h.GC(ctx, r)
	default:
		return okReply{Version}, s.h.Status(ctx)
	}
}

// safeCall calls the handler, a panic answered as Code Internal (and logged with its stack).
func (s *server) safeCall(ctx context.Context, verb string, req any) (o outcome) {
	defer func() {
		if p := recover(); p != nil {
			klog.Errorf("cniproto: panic serving %s: %v\n%s", verb, p, debug.Stack())
			o = outcome{err: &Error{Code: CodeInternal, Message: fmt.Sprintf("weftd failed serving %s (a panic: %v)", verb, p)}}
		}
	}()
	reply, err := s.call(ctx, req)
	return outcome{reply, err}
}

type outcome struct {
	reply any
	err   error
}

func (s *server) serve(w http.ResponseWriter, r *http.Request, verb string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, badRequest("%s /v1/%s: expected POST", clip(r.Method), verb))
		return
	}
	timeout := MaxTimeout
	if v := r.Header.Get(TimeoutHeader); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, badRequest("%s %q: expected a positive duration", TimeoutHeader, clip(v)))
			return
		}
		timeout = min(timeout, d-answerMargin(d))
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, badRequest("request body over %d bytes", MaxBody))
			return
		}
		writeError(w, http.StatusBadRequest, badRequest("read the request: %v", err))
		return
	}
	req, perr := decodeRequest(verb, body)
	if perr != nil {
		writeError(w, statusOf(perr.Code), perr)
		return
	}
	key, what := busyKey(req)
	if key != "" {
		if !s.acquire(key) {
			writeError(w, statusOf(CodeBusy), &Error{Code: CodeBusy, Message: "another request for " + what + " is running"})
			return
		}
	}
	// done is unbuffered and abandoned closed once this request is answered without the handler's outcome: the
	// handler's goroutine then knows for sure that its outcome reached no one.
	done, abandoned := make(chan outcome), make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		o := s.safeCall(ctx, verb, req)
		select {
		case done <- o: // the answer is on its way; serve releases the pod
		case <-abandoned:
			s.giveBack(req, o)
			if key != "" {
				s.release(key)
			}
		}
	}()
	select {
	case o := <-done:
		if key != "" {
			s.release(key) // before the answer, so the client's next request never finds it busy
		}
		if o.err != nil {
			e := asError(o.err)
			writeError(w, statusOf(e.Code), e)
			return
		}
		writeJSON(w, http.StatusOK, o.reply)
		if err := http.NewResponseController(w).Flush(); err != nil && key != "" {
			// The plugin is gone (it gave up waiting): an address it was given it never learnt of. Unless its
			// retry already runs (and gets this same address), give it back.
			if s.acquire(key) {
				s.giveBack(req, o)
				s.release(key)
			}
		}
	case <-ctx.Done():
		close(abandoned)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			writeError(w, statusOf(CodeTimeout), &Error{Code: CodeTimeout, Message: fmt.Sprintf("%s for %s: no answer within %v", verb, orAll(what), timeout)})
			return
		}
		writeError(w, statusOf(CodeInternal), &Error{Code: CodeInternal, Message: verb + ": cancelled (weftd stopping)"})
	}
}

// answerMargin is how much sooner than the client's deadline the server gives up on the handler, so that its
// Timeout answer reaches the client before the client stops waiting: then every ADD the client saw fail and the
// handler completed anyway is known to the server, which gives its address back.
func answerMargin(d time.Duration) time.Duration {
	return min(d/10, 2*time.Second)
}

// giveBackTimeout bounds the Del that gives back an address no one was told of.
const giveBackTimeout = 30 * time.Second

// giveBack undoes an ADD the handler completed after the request had been answered (Timeout, or weftd stopping)
// or whose answer could not be delivered: the plugin saw a failure and built no datapath, so the address would be
// held by no one until a GC. It runs while the pod is busy, so a retried ADD cannot get the address and then lose
// it to this Del.
func (s *server) giveBack(req any, o outcome) {
	r, ok := req.(AddRequest)
	reply, replied := o.reply.(AddReply)
	if !ok || o.err != nil || !replied {
		return
	}
	ctx, cancel := context.WithTimeout(s.base, giveBackTimeout)
	defer cancel()
	if err := s.h.Del(ctx, DelRequest{Version: Version, Pod: r.Pod, IP: reply.IP}); err != nil {
		klog.Errorf("cniproto: give back %s of container %s interface %s, whose ADD completed after its answer: %v", reply.IP, r.Pod.ContainerID, r.Pod.IfName, err)
		return
	}
	klog.Warningf("cniproto: gave back %s of container %s interface %s: its ADD completed after the request had been answered", reply.IP, r.Pod.ContainerID, r.Pod.IfName)
}

func orAll(what string) string {
	if what == "" {
		return "the node"
	}
	return what
}

// asError is the *Error a handler's error is answered as.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: CodeTimeout, Message: err.Error()}
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}

func statusOf(code string) int {
	switch code {
	case CodeBadRequest, CodeVersion:
		return http.StatusBadRequest
	case CodeBusy, CodeLimit:
		return http.StatusConflict
	case CodeNotReady:
		return http.StatusServiceUnavailable
	case CodeTimeout:
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}

func writeError(w http.ResponseWriter, status int, e *Error) {
	writeJSON(w, status, errorReply{Version: Version, Error: e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorReply{Version: Version, Error: &Error{Code: CodeInternal, Message: "encode the reply: " + err.Error()}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
