package cniproto

import (
	"encoding/json"
	"reflect"
	"testing"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// The request decoding never panics, bounds what it accepts, and whatever it accepts encodes back to a request
// it accepts again as the same value.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"Version":"weft.eni/v1","Pod":{"ContainerID":"abc","Netns":"/var/run/netns/x","IfName":"eth0","Namespace":"default","Name":"web-0"}}`,
		`{"Version":"weft.eni/v1","Pod":{"ContainerID":"abc","IfName":"eth0"},"IP":"10.0.0.5"}`,
		`{"Version":"weft.eni/v1","Valid":[{"ContainerID":"a","IfName":"eth0"}]}`,
		`{"Version":"weft.eni/v1"}`,
		`{"Version":"weft.eni/v2","Pod":1}`,
		`{"version":"weft.eni/v1","pod":{"containerid":"A.b_c-d","netns":"/n","ifname":"e","namespace":"n","name":"a.b"}}`,
		``, `null`, `[]`, `{"Pod":null}`,
	} {
		for _, verb := range []string{"add", "del", "check", "gc", "status"} {
			f.Add(verb, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, verb string, body []byte) {
		req, e := decodeRequest(verb, body)
		if e != nil {
			if e.Code != CodeBadRequest && e.Code != CodeVersion || e.Message == "" {
				t.Fatalf("error %+v", e)
			}
			if req != nil {
				t.Fatalf("a request with an error: %+v", req)
			}
			return
		}
		if len(body) > MaxBody {
			t.Fatalf("accepted %d bytes", len(body))
		}
		var again any
		switch r := req.(type) {
		case AddRequest, DelRequest, CheckRequest, GCRequest:
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			again, e = decodeRequest(verb, b)
			if e != nil {
				t.Fatalf("re-encoded %s refused: %v", b, e)
			}
		case nil:
			if verb != "status" {
				t.Fatalf("%s decoded to nil", verb)
			}
			return
		default:
			t.Fatalf("decoded %T", req)
		}
		if !reflect.DeepEqual(normalize(again), normalize(req)) {
			t.Fatalf("round trip %+v -> %+v", req, again)
		}
	})
}

// normalize makes an empty and a nil Valid list equal.
func normalize(r any) any {
	if g, ok := r.(GCRequest); ok && len(g.Valid) == 0 {
		g.Valid = nil
		return g
	}
	return r
}
