package aliyun

// The SDK builds its HTTP requests without a context, so nothing it does can be interrupted: a call to an API
// that accepted the connection and never answers holds the caller until the SDK's timeout, whatever its
// context says. Every attempt therefore gets its own SDK clients over an attemptTransport, which ties the
// request to the attempt's context (a cancelled or expired context aborts the request at once: no goroutine
// outlives the call) and reads the whole answer itself, bounded, so that a hostile or broken endpoint (an
// endless body, a 200 with HTML or truncated JSON) ends as a clear error instead of a hang, a huge allocation
// or an empty result taken for the truth.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
	"unicode"
)

// ErrNotAPIAnswer is wrapped by the errors of answers that are not the API's (a success body that is not its
// JSON, an endless body). They are not retried: an endpoint answering HTML or garbage keeps doing so.
var ErrNotAPIAnswer = errors.New("the answer is not the API's")

// maxBody bounds an API answer: the largest weft asks for (100 route entries, 100 instance types) is well under
// a megabyte.
const maxBody = 8 << 20

// newBaseTransport is the connection pool one Client's attempts share: keep-alive connections survive the
// per-attempt SDK clients.
func newBaseTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: min(timeout, 5*time.Second), KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   min(timeout, 5*time.Second),
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
}

// attemptTransport is the RoundTripper of one attempt.
type attemptTransport struct {
	ctx  context.Context
	base http.RoundTripper

	mu  sync.Mutex
	bad error // the answer was not the API's (set for a 2xx whose body is not its JSON)
}

func (t *attemptTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	// r's own context carries the SDK's timeout (http.Client.Timeout); the attempt's context is added to it.
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	stop := context.AfterFunc(t.ctx, func() { cancel(context.Cause(t.ctx)) })
	defer stop()
	resp, err := t.base.RoundTrip(r.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer (HTTP %d): %w", resp.StatusCode, err)
	}
	if len(body) > maxBody {
		err := fmt.Errorf("%w: HTTP %d with a body over %d bytes", ErrNotAPIAnswer, resp.StatusCode, maxBody)
		t.mu.Lock()
		t.bad = err
		t.mu.Unlock()
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if err := checkAnswer(body); err != nil {
			t.mu.Lock()
			t.bad = fmt.Errorf("%w: HTTP %d %s: %v", ErrNotAPIAnswer, resp.StatusCode, describeBody(resp.Header.Get("Content-Type"), body), err)
			t.mu.Unlock()
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// badAnswer is the error recorded for the attempt's last answer, if any.
func (t *attemptTransport) badAnswer() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bad
}

// checkAnswer accepts a success body only when it is a JSON object with a RequestId, as every answer of the
// VPC, ECS and Quota Center APIs is: an empty body or {} would otherwise decode into an empty list (no route
// tables, no entries), which the caller would act upon.
func checkAnswer(body []byte) error {
	var probe struct {
		RequestID json.RawMessage `json:"RequestId"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	var id string
	if json.Unmarshal(probe.RequestID, &id) != nil || id == "" {
		return fmt.Errorf("no RequestId")
	}
	return nil
}

// describeBody names a body for an error: its type, size and a short printable excerpt with any URL query
// dropped (a proxy's error page may quote the signed request URL).
func describeBody(contentType string, body []byte) string {
	if contentType == "" {
		contentType = "no Content-Type"
	}
	if len(body) == 0 {
		return fmt.Sprintf("(%s, empty body)", contentType)
	}
	return fmt.Sprintf("(%s, %d bytes: %q)", contentType, len(body), excerpt(string(body), 60))
}

// excerpt is at most n runes of s, unprintable ones as '.', with any URL query dropped.
func excerpt(s string, n int) string {
	ex := []rune(s)
	if len(ex) > n {
		ex = append(ex[:n], '…')
	}
	for i, r := range ex {
		if !unicode.IsPrint(r) {
			ex[i] = '.'
		}
	}
	return redactURL(string(ex))
}
