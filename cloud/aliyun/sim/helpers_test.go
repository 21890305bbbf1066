package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// rig is a world served over HTTP, with a settable clock and a raw signed caller, for the tests that send what
// the SDK never would.
type rig struct {
	t     *testing.T
	world *World
	srv   *Server
	http  *httptest.Server
	nonce atomic.Int64
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func newRig(t *testing.T) *rig {
	t.Helper()
	st := DefaultState()
	st.Timing = Timing{EntryPending: time.Nanosecond, EntryDeleting: time.Nanosecond, ENITransition: time.Nanosecond}
	w := NewWorld(st, nil, "")
	r := &rig{t: t, world: w, srv: NewServer(w)}
	r.http = httptest.NewServer(r.srv)
	t.Cleanup(func() {
		// Close waits for every handler; one stuck on a held world lock would hang the test binary instead of
		// failing this test.
		done := make(chan struct{})
		go func() { r.http.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("the server did not shut down within 5 s: a handler is stuck (the world lock held?)")
		}
	})
	return r
}

// call sends a signed POST of action with extra parameters and returns the status and the decoded body.
func (r *rig) call(action string, extra map[string]string) (int, map[string]any) {
	r.t.Helper()
	code, body, err := r.try(action, extra)
	if err != nil {
		r.t.Fatalf("%s: %v", action, err)
	}
	return code, body
}

// try is call that returns a transport error (a dropped connection) instead of failing the test.
func (r *rig) try(action string, extra map[string]string) (int, map[string]any, error) {
	version := "2016-04-28"
	if _, ok := ecsActions[action]; ok {
		version = "2014-05-26"
	}
	p := map[string]string{"Action": action, "Version": version, "Format": "JSON", "AccessKeyId": DefaultAccessKeyID,
		"SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": fmt.Sprint(r.nonce.Add(1)),
		"Timestamp": time.Now().UTC().Format(gmt), "RegionId": "cn-hangzhou"}
	for k, v := range extra {
		p[k] = v
	}
	p["Signature"] = Sign("POST", p, DefaultAccessKeySecret)
	q := url.Values{}
	for k, v := range p {
		q.Set(k, v)
	}
	cl := &http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Post(r.http.URL+"/?"+q.Encode(), "application/x-www-form-urlencoded", nil)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body, nil
}

// adminGet fetches an admin path and fails the test when it does not answer within 5 s (a held world lock).
func (r *rig) adminGet(path string) []byte {
	r.t.Helper()
	cl := &http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(r.http.URL + path)
	if err != nil {
		r.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		r.t.Fatalf("GET %s: %d %v %s", path, resp.StatusCode, err, b)
	}
	return b
}
