package cniproto

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The set-up the reply tests of each mode share (dual_test.go, exclusive_test.go, trunk_test.go).

// fieldCase is one bad field of a reply: mod breaks it, and the error must name field.
type fieldCase struct {
	field string
	mod   func(*AddReply)
}

// checkRefuses applies each case to a fresh reply from base and wants validate to refuse it naming the field.
func checkRefuses(t *testing.T, base func() AddReply, cases []fieldCase) {
	t.Helper()
	for _, c := range cases {
		r := base()
		c.mod(&r)
		if err := r.validate(); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %v, want an error naming it", c.field, err)
		}
	}
}

// checkAdditive wants plain to encode without any of keys, and r to round-trip through JSON and validate.
func checkAdditive(t *testing.T, plain AddReply, keys []string, r AddReply) {
	t.Helper()
	b, _ := json.Marshal(plain)
	for _, k := range keys {
		if strings.Contains(string(b), k) {
			t.Errorf("a reply without the feature carries %s: %s", k, b)
		}
	}
	b, _ = json.Marshal(r)
	var back AddReply
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, r) {
		t.Fatalf("round trip: %+v %v, want %+v", back, err, r)
	}
	if err := back.validate(); err != nil {
		t.Fatal(err)
	}
}
