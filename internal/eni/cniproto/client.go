package cniproto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// DefaultTimeout is a call's time limit when Client.Timeout is 0 (Terway's CNI allows 120 s).
const DefaultTimeout = 120 * time.Second

// ErrUnreachable: no daemon listens on the socket (missing, refused, or not permitted). The error wraps it and
// the dial error, so errors.Is tells it from a daemon that answered with an error or failed mid-request.
var ErrUnreachable = errors.New("weftd unreachable")

// ErrInterrupted: weftd accepted the request but the connection ended before a whole answer came back (the
// daemon died or restarted mid-request). Whether it acted on the request is unknown; asking again later is safe
// (ADD and DEL are idempotent per pod), so the plugin reports it as "try again later", not as a failure.
var ErrInterrupted = errors.New("weftd went away mid-request")

// Client calls weftd. Timeout bounds each call, the dial included (0: DefaultTimeout); Socket "" is
// DefaultSocket. A daemon's failure is returned as *Error; a context that ends first as an error wrapping the
// context's.
type Client struct {
	Socket  string
	Timeout time.Duration
}

// Add asks weftd for the pod's address. The reply is checked (the protocol version, an IPv4 address).
func (c *Client) Add(ctx context.Context, r AddRequest) (AddReply, error) {
	if r.Version == "" {
		r.Version = Version
	}
	var reply AddReply
	if err := c.do(ctx, "add", r, &reply, &reply.Version); err != nil {
		return AddReply{}, err
	}
	if err := reply.validate(); err != nil {
		return AddReply{}, fmt.Errorf("weftd at %s: add: the reply: %w", c.socket(), err)
	}
	return reply, nil
}

// Del releases the pod's address.
func (c *Client) Del(ctx context.Context, r DelRequest) error {
	if r.Version == "" {
		r.Version = Version
	}
	var reply okReply
	return c.do(ctx, "del", r, &reply, &reply.Version)
}

// Check asks whether the pod still holds its address.
func (c *Client) Check(ctx context.Context, r CheckRequest) error {
	if r.Version == "" {
		r.Version = Version
	}
	var reply okReply
	return c.do(ctx, "check", r, &reply, &reply.Version)
}

// Status asks whether weftd can serve ADD.
func (c *Client) Status(ctx context.Context) error {
	var reply okReply
	return c.do(ctx, "status", statusRequest{Version}, &reply, &reply.Version)
}

// GC tells weftd which attachments are still valid.
func (c *Client) GC(ctx context.Context, r GCRequest) error {
	if r.Version == "" {
		r.Version = Version
	}
	var reply okReply
	return c.do(ctx, "gc", r, &reply, &reply.Version)
}

func (c *Client) socket() string {
	if c.Socket == "" {
		return DefaultSocket
	}
	return c.Socket
}

// dialError marks a failure to connect, so do can tell it from a failure after connecting.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func (c *Client) do(ctx context.Context, verb string, req, reply any, version *string) error {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	socket := c.socket()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("weftd %s: encode the request: %w", verb, err)
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: timeout}
			conn, err := d.DialContext(ctx, "unix", socket)
			if err != nil {
				return nil, &dialError{err}
			}
			return conn, nil
		},
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 8 << 10,
	}
	defer tr.CloseIdleConnections()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://weftd/v1/"+verb, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("weftd %s: %w", verb, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return fmt.Errorf("weftd at %s: %s: no time left: %w", socket, verb, context.DeadlineExceeded)
		}
		hreq.Header.Set(TimeoutHeader, left.String())
	}
	resp, err := (&http.Client{Transport: tr}).Do(hreq)
	if err != nil {
		var de *dialError
		if errors.As(err, &de) && ctx.Err() == nil {
			return fmt.Errorf("%w at %s: %w", ErrUnreachable, socket, de.err)
		}
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("weftd at %s: %s: no answer: %w", socket, verb, cerr)
		}
		if interrupted(err) {
			return fmt.Errorf("weftd at %s: %s: %w: %w", socket, verb, ErrInterrupted, err)
		}
		return fmt.Errorf("weftd at %s: %s: %w", socket, verb, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("weftd at %s: %s: no answer: %w", socket, verb, cerr)
		}
		if interrupted(err) {
			return fmt.Errorf("weftd at %s: %s: read the reply: %w: %w", socket, verb, ErrInterrupted, err)
		}
		return fmt.Errorf("weftd at %s: %s: read the reply: %w", socket, verb, err)
	}
	if len(b) > MaxBody {
		return fmt.Errorf("weftd at %s: %s: reply over %d bytes", socket, verb, MaxBody)
	}
	if resp.StatusCode/100 != 2 {
		var er errorReply
		if json.Unmarshal(b, &er) != nil || er.Error == nil || er.Error.Code == "" {
			return fmt.Errorf("weftd at %s: %s: HTTP %d: %q", socket, verb, resp.StatusCode, clip(string(b)))
		}
		return er.Error
	}
	if err := json.Unmarshal(b, reply); err != nil {
		return fmt.Errorf("weftd at %s: %s: unreadable reply: %w", socket, verb, err)
	}
	if *version != Version {
		return &Error{Code: CodeVersion, Message: fmt.Sprintf("the plugin speaks %s, weftd answered %s", Version, describeVersion(*version))}
	}
	return nil
}

// interrupted tells a connection that ended under the request (EOF before or inside the answer, a reset) from
// other transport failures.
func interrupted(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}
