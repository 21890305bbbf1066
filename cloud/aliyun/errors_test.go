package aliyun

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
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

// The environment is read in one place: no file of the package but env.go names os.Getenv, os.LookupEnv or
// os.Environ (tests may).
func TestOnlyEnvConfigReadsTheEnvironment(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("glob: %v %v", files, err)
	}
	for _, f := range files {
		if f == "env.go" || strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, call := range []string{"os.Getenv", "os.LookupEnv", "os.Environ"} {
			if strings.Contains(string(b), call) {
				t.Errorf("%s calls %s: read the environment through EnvConfig", f, call)
			}
		}
	}
}

// The real service's SignatureDoesNotMatch message quotes the string to sign, STS token included: the error
// keeps the code and drops the message.
func TestSignatureMessageDropped(t *testing.T) {
	body := `{"Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched with our calculation. server string to sign is:POST&%2F&AccessKeyId%3DSTS.x%26SecurityToken%3DCAIS-secret-token","RequestId":"r1"}`
	err := translate("DescribeVpcs", sdkerrors.NewServerError(400, body, ""))
	if Code(err) != "SignatureDoesNotMatch" || strings.Contains(err.Error(), "secret-token") || strings.Contains(err.Error(), "string to sign is") {
		t.Fatalf("translated: %v", err)
	}
	body = `{"Code":"Forbidden.RAM","Message":"User not authorized to operate on the specified resource.","RequestId":"r2"}`
	if err := translate("DescribeVpcs", sdkerrors.NewServerError(403, body, "")); !strings.Contains(err.Error(), "User not authorized") {
		t.Fatalf("other messages are kept: %v", err)
	}
}
