package checkpoint

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func reserved() Record {
	return Record{IfName: "eth0", PodNamespace: "default", PodName: "web-0", IP: netip.MustParseAddr("10.0.1.9"), ENI: "eni-a",
		State: Reserved, Reserve: true, StatefulSet: "web", AssignedAt: t0, ReleasedAt: t0.Add(time.Hour), ReservedUntil: t0.Add(time.Hour + 5*time.Minute)}
}

// A version 1 file (as weft before fixed addresses wrote it) loads through the upgrade chain as it was, none
// reserved, and is saved back as version 2.
func TestUpgradeFromV1(t *testing.T) {
	v1 := `{"version": 1, "instance": "i-bp1abc", "records": [
	  {"containerID": "c0ffee01", "netns": "/var/run/netns/cni-1", "ifName": "eth0", "podNamespace": "default", "podName": "web-0",
	   "ip": "10.0.1.5", "eni": "eni-a", "state": "Assigned", "assignedAt": "2026-03-01T10:00:00.123456789Z"},
	  {"ifName": "eth0", "podNamespace": "default", "podName": "web-1", "ip": "10.0.1.6", "eni": "eni-a", "state": "Cooldown",
	   "assignedAt": "2026-03-01T10:00:00.123456789Z", "releasedAt": "2026-03-01T11:00:00.123456789Z"},
	  {"ip": "10.0.1.7", "eni": "eni-b", "state": "Quarantined", "reason": "why"}]}`
	f, err := Decode([]byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != Version || f.Instance != "i-bp1abc" || len(f.Records) != 3 {
		t.Fatalf("upgraded %+v", f)
	}
	r := f.Records[0]
	if r.ContainerID != "c0ffee01" || r.PodName != "web-0" || r.IP != netip.MustParseAddr("10.0.1.5") || r.State != Assigned ||
		!r.AssignedAt.Equal(t0) || r.Reserve || r.StatefulSet != "" || !r.ReservedUntil.IsZero() {
		t.Fatalf("record 0 upgraded to %+v", r)
	}
	if f.Records[1].State != Cooldown || !f.Records[1].ReleasedAt.Equal(t0.Add(time.Hour)) || f.Records[2].Reason != "why" {
		t.Fatalf("records upgraded to %+v", f.Records)
	}
	s := Store{Path: filepath.Join(t.TempDir(), "checkpoint.json")}
	if err := os.WriteFile(s.Path, []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := s.Load()
	if err != nil || equalFile(f, g) != nil {
		t.Fatalf("Load of the v1 file: %+v %v", g, err)
	}
	if err := s.Save(g); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(s.Path)
	if !strings.Contains(string(b), `"version": 2`) {
		t.Fatalf("saved back as\n%s", b)
	}
	// Version 1 had none of version 2's fields nor its state: a v1 file with them is refused, not guessed at.
	for _, c := range []struct{ name, data, want string }{
		{"v2 field", strings.Replace(v1, `"reason": "why"`, `"reason": "why", "reserve": true`, 1), `unknown field "reserve"`},
		{"v2 state", strings.Replace(v1, `"state": "Quarantined"`, `"state": "Reserved"`, 1), `records[2].state: "Reserved", which version 1 does not have`},
		{"v1 invalid", strings.Replace(v1, `"state": "Cooldown"`, `"state": "Free"`, 1), `records[1].state: "Free"`},
	} {
		if _, err := Decode([]byte(c.data)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
}

// A file with a reservation round-trips; version 1's weft (whose newest version is 1) refuses it, as it refuses
// any newer file (TestLoadRefuses "newer version" is that rule at this version).
func TestReservedRoundTrip(t *testing.T) {
	f := sample()
	f.Records = append(f.Records, reserved())
	f.Records[0].Reserve, f.Records[0].StatefulSet = true, "web"
	s := Store{Path: filepath.Join(t.TempDir(), "checkpoint.json")}
	if err := s.Save(f); err != nil {
		t.Fatal(err)
	}
	g, err := s.Load()
	if err != nil || equalFile(f, g) != nil {
		t.Fatalf("loaded %+v %v", g, err)
	}
	b, _ := os.ReadFile(s.Path)
	for _, w := range []string{`"state": "Reserved"`, `"reservedUntil": "2026-03-01T11:05:00.123456789Z"`, `"statefulSet": "web"`, `"reserve": true`} {
		if !strings.Contains(string(b), w) {
			t.Errorf("no %s in\n%s", w, b)
		}
	}
}

func TestValidateReserved(t *testing.T) {
	f := sample()
	f.Records = append(f.Records, reserved())
	if err := f.Validate(); err != nil {
		t.Fatalf("a Reserved record: %v", err)
	}
	cases := []struct {
		name   string
		change func(r *Record, f *File)
		want   string
	}{
		{"no pod", func(r *Record, _ *File) { r.PodName, r.PodNamespace = "", "" }, "records[4].podName: empty, expected the namespace and name"},
		{"no ifname", func(r *Record, _ *File) { r.IfName = "" }, "records[4].ifName: empty"},
		{"container", func(r *Record, _ *File) { r.ContainerID = "c1" }, `records[4].containerID: "c1"`},
		{"netns", func(r *Record, _ *File) { r.Netns = "/var/run/netns/x" }, "records[4].containerID"},
		{"no reserve", func(r *Record, _ *File) { r.Reserve = false; r.StatefulSet = "" }, "records[4].reserve: false"},
		{"no release", func(r *Record, _ *File) { r.ReleasedAt = time.Time{} }, "records[4].releasedAt: missing"},
		{"no until", func(r *Record, _ *File) { r.ReservedUntil = time.Time{} }, "records[4].reservedUntil: missing"},
		{"until before release", func(r *Record, _ *File) { r.ReservedUntil = r.ReleasedAt.Add(-time.Second) }, "records[4].reservedUntil: 2026-03-01T10:59:59Z, expected not before releasedAt"},
		{"no eni", func(r *Record, _ *File) { r.ENI = "" }, "records[4].eni: empty"},
		{"bad sts", func(r *Record, _ *File) { r.StatefulSet = "Web/0" }, `records[4].statefulSet: "Web/0", expected an object name`},
		{"long sts", func(r *Record, _ *File) { r.StatefulSet = strings.Repeat("a", 254) }, "records[4].statefulSet"},
		{"until elsewhere", func(_ *Record, f *File) { f.Records[1].ReservedUntil = t0 }, "records[1].reservedUntil: set in a Cooldown record"},
		{"reserve on cooldown", func(_ *Record, f *File) { f.Records[1].Reserve = true }, "records[1].reserve: true in a Cooldown record"},
		{"sts without reserve", func(_ *Record, f *File) { f.Records[0].StatefulSet = "web" }, `records[0].statefulSet: "web" without reserve`},
		{"address held", func(r *Record, f *File) { r.IP = f.Records[1].IP }, "records[4].ip: 10.0.1.6 is already held by records[1] (Cooldown); an address is Assigned, Cooldown or Reserved once"},
		{"pod twice", func(_ *Record, f *File) {
			x := reserved()
			x.IP = netip.MustParseAddr("10.0.1.10")
			f.Records = append(f.Records, x)
		}, "records[5].podName: pod default/web-0 interface eth0 already has an address reserved by records[4] (10.0.1.9)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := sample()
			f.Records = append(f.Records, reserved())
			c.change(&f.Records[4], f)
			if err := f.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want an error saying %q", err, c.want)
			}
		})
	}
}
