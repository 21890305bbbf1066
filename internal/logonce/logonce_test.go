package logonce

import "testing"

func TestSet(t *testing.T) {
	var s Set
	if !s.First("a", "bad MAC") || s.First("a", "bad MAC") {
		t.Fatal("the same reason for the same key must be new once")
	}
	if !s.First("a", "bad IP") {
		t.Fatal("a changed reason is new")
	}
	if !s.First("b", "bad MAC") {
		t.Fatal("keys are independent")
	}
	s.Keep(func(k string) bool { return k == "b" })
	if !s.First("a", "bad IP") {
		t.Fatal("a forgotten key's reason is new again")
	}
	if s.First("b", "bad MAC") {
		t.Fatal("a kept key remembers")
	}
}
