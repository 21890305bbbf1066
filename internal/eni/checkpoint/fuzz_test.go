package checkpoint

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// FuzzDecode: whatever bytes a checkpoint holds, Decode never panics; what it accepts is valid, and re-encoded
// decodes to the same file, whose encoding is a fixed point (saving what was loaded changes nothing).
func FuzzDecode(f *testing.F) {
	good, err := encode(sample())
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(good),
		string(good[:len(good)/3]),
		`{"version":1,"instance":"","records":[]}`,
		`{"version":1,"instance":"","records":null}`,
		`{"version":1,"instance":"i-1","records":[{"ip":"10.0.0.1","eni":"eni-1","state":"Cooldown","releasedAt":"2026-01-02T03:04:05.999999999+05:30"}]}`,
		`{"version":1,"instance":"i-1","records":[{"ip":"10.0.0.1","eni":"eni-1","state":"Assigned","containerID":"c","ifName":"eth0","assignedAt":"2026-01-02T03:04:05Z"},{"ip":"10.0.0.1","state":"Quarantined","reason":"two claims"}]}`,
		`{"version":1,"instance":"i-1","records":[{"ip":"10.0.0.1","eni":"eni-1","state":"Assigned","containerID":"c","ifName":"eth0"},{"ip":"10.0.0.1","eni":"eni-1","state":"Assigned","containerID":"d","ifName":"eth0"}]}`,
		`{"Version":1,"INSTANCE":"i-1","records":[{"IP":"10.0.0.2","Eni":"eni-1","state":"Quarantined"}]}`,
		`{"version":2,"instance":"i-1","records":[]}`,
		`{"version":2,"instance":"i-1","records":[{"ip":"10.0.0.1","eni":"eni-1","state":"Reserved","ifName":"eth0","podNamespace":"d","podName":"web-0","reserve":true,"statefulSet":"web","releasedAt":"2026-01-02T03:04:05Z","reservedUntil":"2026-01-02T03:09:05Z"}]}`,
		`{"version":1,"instance":"i-1","records":[{"ip":"10.0.0.1","eni":"eni-1","state":"Reserved","reserve":true}]}`,
		`{"version":3,"instance":"i-1","records":[]}`,
		`{"version":0}`,
		`{"version":"1"}`,
		`{"version":1e0}`,
		`{"instance":"i-1","records":[]}`,
		`{"version":1,"version":2}`,
		`{"version":1,"records":[{"ip":"::ffff:10.0.0.1","eni":"e","state":"Cooldown","releasedAt":"2026-01-02T03:04:05Z"}]}`,
		`{"version":1,"records":[{"ip":"10.0.0.1%eth0","eni":"e","state":"Quarantined"}]}`,
		`{"version":1,"instance":"i","records":[{"ip":"10.0.0.1","state":"Quarantined","assignedAt":"0000-01-01T00:00:00Z","releasedAt":"9999-12-31T23:59:59.999999999-23:59"}]}`,
		`[]`, `null`, `"version"`, ``, `{"version":1}garbage`, "{\"version\":1,\"instance\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Decode(data)
		if err != nil {
			if d != nil {
				t.Fatalf("Decode returned a file and an error: %v", err)
			}
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("Decode accepted an invalid file: %v", err)
		}
		enc, err := encode(d)
		if err != nil {
			t.Fatalf("accepted file does not encode: %v", err)
		}
		if len(enc) > MaxSize {
			t.Skip() // Save would refuse it; cannot come from these inputs, which are far smaller
		}
		d2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded file refused: %v\n%s", err, enc)
		}
		if err := equalFile(d, d2); err != nil {
			t.Fatalf("re-decoded differs: %v\n%s", err, enc)
		}
		enc2, err := encode(d2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not a fixed point (%v):\n%s\n%s", err, enc, enc2)
		}
		if !strings.Contains(string(enc), fmt.Sprintf(`"version": %d,`, Version)) {
			t.Fatalf("no version in\n%s", enc)
		}
	})
}
