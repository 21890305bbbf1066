package aliyun

import (
	"strings"
	"testing"
	"time"
)

// Every query string is dropped, and a message with several URLs (or a redacted one) does not loop.
func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"no url here": "no url here",
		`Post "http://127.0.0.1:1/?AccessKeyId=LTAIx&Signature=abc": dial tcp: connection refused`: `Post "http://127.0.0.1:1/?<redacted>": dial tcp: connection refused`,
		"GET http://a/?k=1 then http://b/?k=2":                                                     "GET http://a/?<redacted> then http://b/?<redacted>",
		"ends in a query http://a/?AccessKeyId=x":                                                  "ends in a query http://a/?<redacted>",
	} {
		done := make(chan string, 1)
		go func() { done <- redactURL(in) }()
		select {
		case got := <-done:
			if got != want || strings.Contains(got, "AccessKeyId") {
				t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("redactURL(%q) does not return", in)
		}
	}
}
