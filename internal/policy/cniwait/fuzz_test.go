package cniwait

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// The socket's request decoding never panics, refuses what it cannot use with 400 and a message, and hands the
// engine only requests that validate.
func FuzzHandle(f *testing.F) {
	for _, s := range []string{`{"namespace":"default","name":"web-0","ips":["10.244.0.5"]}`,
		`{"namespace":"a","name":"b","ips":["10.0.0.1","fd00::1"]}`, `{"namespace":"","name":"b","ips":[]}`,
		`{"ips":["fe80::1%eth0"]}`, `null`, `[]`, ``, `{"namespace":"a","name":"b","ips":["10.0.0.1"]}{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got *Request
		s := &Server{Ensure: func(_ context.Context, ns, name string, ips []netip.Addr) error {
			got = &Request{ns, name, ips}
			return nil
		}}
		w := httptest.NewRecorder()
		s.handle(w, httptest.NewRequest(http.MethodPost, "/v1/pod", strings.NewReader(string(body))))
		switch w.Code {
		case http.StatusOK:
			if got == nil || got.validate() != nil {
				t.Fatalf("200 for %q, engine saw %+v", body, got)
			}
		case http.StatusBadRequest:
			if got != nil || w.Body.Len() == 0 {
				t.Fatalf("400 for %q with the engine asked %+v, body %q", body, got, w.Body.String())
			}
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
	})
}
