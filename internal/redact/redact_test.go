package redact

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"http://user:secret@host:2379":                        "http://<redacted>@host:2379",
		"--etcd-endpoints=http://a:b@h1:2379,https://c:d@h2":  "--etcd-endpoints=http://<redacted>@h1:2379,https://<redacted>@h2",
		`dial "user:s3cr%40t@10.0.0.1:2379": too many colons`: `dial "<redacted>@10.0.0.1:2379": too many colons`,
		"etcd-endpoints://0xc0/http://u:p@h:1":                "etcd-endpoints://0xc0/http://<redacted>@h:1",
		"mail bob@example.com about http://h:2379":            "mail bob@example.com about http://h:2379",
		"no url here: just text":                              "no url here: just text",
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://user:secret@host:2379/x?y=1": "http://<redacted>@host:2379/x?y=1",
		"https://user@host":                  "https://<redacted>@host",
		"http://host:2379":                   "http://host:2379",
		"%zz://u:p@h":                        "%zz://<redacted>@h",
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
	if s, had := StripUserinfo("http://u:secret@h:2379"); !had || s != "http://h:2379" || strings.Contains(s, "secret") {
		t.Errorf("StripUserinfo: %q %v", s, had)
	}
	if s, had := StripUserinfo("http://h:2379"); had || s != "http://h:2379" {
		t.Errorf("StripUserinfo without userinfo: %q %v", s, had)
	}
}
