package checkpoint

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)

func sample() *File {
	return &File{
		Version:  Version,
		Instance: "i-bp1abc",
		Records: []Record{
			{ContainerID: "c0ffee01", Netns: "/var/run/netns/cni-1", IfName: "eth0", PodNamespace: "default",
				PodName: "web-0", IP: netip.MustParseAddr("10.0.1.5"), ENI: "eni-a", State: Assigned, AssignedAt: t0},
			{ContainerID: "c0ffee02", IfName: "eth0", PodNamespace: "default", PodName: "web-1",
				IP: netip.MustParseAddr("10.0.1.6"), ENI: "eni-a", State: Cooldown, AssignedAt: t0,
				ReleasedAt: t0.Add(time.Hour)},
			{IP: netip.MustParseAddr("10.0.1.7"), ENI: "eni-b", State: Quarantined,
				Reason: "routed on the host to wen0123456789ab, which no record holds"},
			{ContainerID: "c0ffee03", IfName: "eth0", IP: netip.MustParseAddr("10.0.1.5"), State: Quarantined,
				Reason: "listed on no ENI"},
		},
	}
}

// equalFile compares two files field by field, times by instant.
func equalFile(a, b *File) error {
	if a.Version != b.Version || a.Instance != b.Instance || len(a.Records) != len(b.Records) {
		return fmt.Errorf("version/instance/records %d %q %d != %d %q %d",
			a.Version, a.Instance, len(a.Records), b.Version, b.Instance, len(b.Records))
	}
	for i := range a.Records {
		x, y := a.Records[i], b.Records[i]
		if !x.AssignedAt.Equal(y.AssignedAt) || !x.ReleasedAt.Equal(y.ReleasedAt) {
			return fmt.Errorf("records[%d] times %v %v != %v %v", i, x.AssignedAt, x.ReleasedAt, y.AssignedAt, y.ReleasedAt)
		}
		x.AssignedAt, x.ReleasedAt, y.AssignedAt, y.ReleasedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if x != y {
			return fmt.Errorf("records[%d] %+v != %+v", i, x, y)
		}
	}
	return nil
}

func TestRoundTrip(t *testing.T) {
	s := Store{Path: filepath.Join(t.TempDir(), "eni", "checkpoint.json")}
	in := sample()
	in.Version = 0 // Save writes the current version whatever the caller left there
	if err := s.Save(in); err != nil {
		t.Fatal(err)
	}
	if in.Version != 0 {
		t.Fatalf("Save modified its argument: version %d", in.Version)
	}
	out, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	want := sample()
	if err := equalFile(out, want); err != nil {
		t.Fatal(err)
	}
	// Saved again unchanged, the bytes are the same: the format is stable.
	b1, _ := os.ReadFile(s.Path)
	if err := s.Save(out); err != nil {
		t.Fatal(err)
	}
	b2, _ := os.ReadFile(s.Path)
	if !bytes.Equal(b1, b2) {
		t.Fatalf("re-saved checkpoint differs:\n%s\n%s", b1, b2)
	}
	if !bytes.Contains(b1, []byte(`"version": 2`)) {
		t.Fatalf("no version in\n%s", b1)
	}
}

func TestLoadMissing(t *testing.T) {
	for _, p := range []string{"checkpoint.json", "no/such/dir/checkpoint.json"} {
		f, err := Store{Path: filepath.Join(t.TempDir(), p)}.Load()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if f.Version != Version || len(f.Records) != 0 || f.Instance != "" {
			t.Fatalf("%s: %+v, want an empty checkpoint of version %d", p, f, Version)
		}
	}
	if _, err := (Store{}).Load(); err == nil {
		t.Fatal("Load without a path succeeded")
	}
}

func TestLoadRefuses(t *testing.T) {
	good, err := encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	withVersion := func(v string) string {
		return strings.Replace(string(good), `"version": 2`, `"version": `+v, 1)
	}
	cases := []struct {
		name, data string
		want       []string // in the error besides the path
	}{
		{"empty", "", []string{"empty"}},
		{"blank", " \n", []string{"empty"}},
		{"truncated", string(good[:len(good)/2]), []string{"truncated"}},
		{"corrupt", strings.Replace(string(good), `"records"`, `"rec\x00ords"`, 1), []string{"corrupt"}},
		{"not an object", `[{"version":1}]`, []string{"JSON object"}},
		{"no version", `{"instance":"i-1","records":[]}`, []string{"no version", "versions 1 to 2"}},
		{"null version", withVersion("null"), []string{"no version", "versions 1 to 2"}},
		{"string version", withVersion(`"1"`), []string{`version "1"`, "whole number", "versions 1 to 2"}},
		{"fractional version", withVersion("1.5"), []string{"version 1.5", "whole number"}},
		{"newer version", withVersion("3"), []string{"version 3", "newer", "versions 1 to 2"}},
		{"much newer version", withVersion("99999999999"), []string{"version 99999999999", "newer"}},
		{"version 0", withVersion("0"), []string{"version 0", "unknown", "versions 1 to 2"}},
		{"negative version", withVersion("-3"), []string{"version -3", "unknown"}},
		{"unknown field", strings.Replace(string(good), `"instance"`, `"pool": 3, "instance"`, 1), []string{`unknown field "pool"`}},
		{"trailing data", string(good) + `{"version":1}`, []string{"after top-level value"}},
		{"invalid record", strings.Replace(string(good), `"state": "Cooldown"`, `"state": "Free"`, 1),
			[]string{`records[1].state: "Free"`}},
		{"bad address", strings.Replace(string(good), `"10.0.1.6"`, `"10.0.1.256"`, 1), []string{"10.0.1.256"}},
		{"wrong type", strings.Replace(string(good), `"instance": "i-bp1abc"`, `"instance": 7`, 1), []string{"instance"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "checkpoint.json")
			if err := os.WriteFile(path, []byte(c.data), 0o600); err != nil {
				t.Fatal(err)
			}
			old := time.Now().Add(-time.Hour).Truncate(time.Second)
			if err := os.Chtimes(path, old, old); err != nil {
				t.Fatal(err)
			}
			f, err := Store{Path: path}.Load()
			if err == nil {
				t.Fatalf("loaded %+v", f)
			}
			for _, w := range append(c.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			// Left as it was: same bytes, not rewritten.
			b, rerr := os.ReadFile(path)
			st, serr := os.Stat(path)
			if rerr != nil || serr != nil || string(b) != c.data || !st.ModTime().Equal(old) {
				t.Errorf("file touched by Load: %v %v same bytes %v mtime %v", rerr, serr, string(b) == c.data, st.ModTime())
			}
		})
	}
}

func TestLoadBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoint.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse file one byte beyond the bound.
	if err := f.Truncate(MaxSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := (Store{Path: path}).Load(); err == nil || !strings.Contains(err.Error(), path) ||
		!strings.Contains(err.Error(), fmt.Sprint(MaxSize)) {
		t.Fatalf("huge file: %v, want an error naming it and the bound", err)
	}
	// An endless device ends at the bound.
	if _, err := (Store{Path: "/dev/zero"}).Load(); err == nil || !strings.Contains(err.Error(), "/dev/zero") {
		t.Fatalf("/dev/zero: %v", err)
	}
	// A directory at the path is an error, not an empty checkpoint.
	if _, err := (Store{Path: t.TempDir()}).Load(); err == nil {
		t.Fatal("a directory loaded as a checkpoint")
	}
}

// A crash during Save leaves at most a temporary file beside the checkpoint: Load never reads it.
func TestLeftoverTempIgnored(t *testing.T) {
	dir := t.TempDir()
	s := Store{Path: filepath.Join(dir, "checkpoint.json")}
	leftover := filepath.Join(dir, strings.Replace(tempPattern(s.Path), "*", "123456", 1))
	half, _ := encode(sample())
	if err := os.WriteFile(leftover, half[:len(half)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := s.Load()
	if err != nil || len(f.Records) != 0 {
		t.Fatalf("no checkpoint beside a torn temporary file: %+v %v, want an empty one", f, err)
	}
	old := &File{Instance: "i-bp1abc", Records: sample().Records[:1]}
	if err := s.Save(old); err != nil {
		t.Fatal(err)
	}
	f, err = s.Load()
	if err != nil || equalFile(f, &File{Version: Version, Instance: "i-bp1abc", Records: sample().Records[:1]}) != nil {
		t.Fatalf("checkpoint beside a torn temporary file: %+v %v", f, err)
	}
}

// A Save that fails while writing leaves the old checkpoint in place and no temporary file.
func TestSaveFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	s := Store{Path: filepath.Join(dir, "checkpoint.json")}
	if err := s.Save(sample()); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(s.Path)

	next := sample()
	next.Records = next.Records[:1]
	data, _ := encode(next)
	boom := errors.New("disk full")
	err := writeAtomic(s.Path, data, func(f *os.File, b []byte) error {
		if _, err := f.Write(b[:len(b)/2]); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("failed write: %v", err)
	}
	// Invalid content is refused before anything is written.
	bad := sample()
	bad.Records[0].IfName = ""
	if err := s.Save(bad); err == nil || !strings.Contains(err.Error(), "records[0].ifName") ||
		!strings.Contains(err.Error(), s.Path) {
		t.Fatalf("invalid file saved: %v", err)
	}
	after, _ := os.ReadFile(s.Path)
	if !bytes.Equal(before, after) {
		t.Fatalf("checkpoint changed by failed saves:\n%s", after)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("files left beside the checkpoint: %v", names)
	}
	if _, err := s.Load(); err != nil {
		t.Fatal(err)
	}
}

// Readers racing a writer always find a whole checkpoint, the old one or the new one.
func TestSaveAtomicForReaders(t *testing.T) {
	s := Store{Path: filepath.Join(t.TempDir(), "checkpoint.json")}
	mk := func(n int) *File {
		f := &File{Instance: "i-bp1abc"}
		for i := range n {
			f.Records = append(f.Records, Record{ContainerID: fmt.Sprintf("c%d", i), IfName: "eth0",
				IP: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), ENI: "eni-a", State: Assigned, AssignedAt: t0})
		}
		return f
	}
	if err := s.Save(mk(0)); err != nil {
		t.Fatal(err)
	}
	const writes = 30
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 4)
	for range 2 {
		wg.Go(func() {
			last := 0
			for {
				select {
				case <-done:
					return
				default:
				}
				f, err := s.Load()
				if err != nil {
					errs <- err
					return
				}
				// Records grow by 10 per write: a whole file has a multiple of 10, and never fewer than before.
				if n := len(f.Records); n%10 != 0 || n < last {
					errs <- fmt.Errorf("read %d records after %d", n, last)
					return
				}
				last = len(f.Records)
			}
		})
	}
	for i := 1; i <= writes; i++ {
		if err := s.Save(mk(10 * i)); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestPermissions(t *testing.T) {
	base := t.TempDir()
	s := Store{Path: filepath.Join(base, "lib", "eni", "checkpoint.json")}
	if err := s.Save(sample()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{s.Path, 0o600}, {filepath.Dir(s.Path), 0o700 | os.ModeDir}, {filepath.Join(base, "lib"), 0o700 | os.ModeDir}} {
		st, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, st.Mode(), c.mode)
		}
	}
	// A checkpoint someone made world-readable is 0600 again after the next Save.
	if err := os.Chmod(s.Path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(sample()); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(s.Path); st.Mode() != 0o600 {
		t.Errorf("after re-save: mode %v, want 0600", st.Mode())
	}
}

func TestValidate(t *testing.T) {
	if err := sample().Validate(); err != nil {
		t.Fatalf("sample: %v", err)
	}
	if err := (&File{Version: Version}).Validate(); err != nil {
		t.Fatalf("empty file: %v", err)
	}
	cases := []struct {
		name   string
		change func(f *File)
		want   string
	}{
		{"version", func(f *File) { f.Version = 1 }, "version: 1, expected 2"},
		{"no instance", func(f *File) { f.Instance = "" }, "instance: empty"},
		{"no ip", func(f *File) { f.Records[1].IP = netip.Addr{} }, "records[1].ip: missing"},
		{"ipv6", func(f *File) { f.Records[1].IP = netip.MustParseAddr("fd00::1") }, "records[1].ip: fd00::1, expected an IPv4"},
		{"4in6", func(f *File) { f.Records[1].IP = netip.MustParseAddr("::ffff:10.0.0.1") }, "records[1].ip: ::ffff:10.0.0.1"},
		{"unspecified", func(f *File) { f.Records[1].IP = netip.MustParseAddr("0.0.0.0") }, "records[1].ip: 0.0.0.0, expected a unicast"},
		{"broadcast", func(f *File) { f.Records[1].IP = netip.MustParseAddr("255.255.255.255") }, "records[1].ip: 255.255.255.255"},
		{"multicast", func(f *File) { f.Records[2].IP = netip.MustParseAddr("224.0.0.1") }, "records[2].ip: 224.0.0.1"},
		{"state", func(f *File) { f.Records[0].State = "assigned" }, `records[0].state: "assigned", expected Assigned`},
		{"no state", func(f *File) { f.Records[2].State = "" }, `records[2].state: ""`},
		{"no eni", func(f *File) { f.Records[0].ENI = "" }, "records[0].eni: empty"},
		{"cooldown no eni", func(f *File) { f.Records[1].ENI = "" }, "records[1].eni: empty"},
		{"eni chars", func(f *File) { f.Records[2].ENI = "eni a" }, `records[2].eni: "eni a"`},
		{"assigned no container", func(f *File) { f.Records[0].ContainerID = "" }, "records[0].containerID: empty"},
		{"assigned no ifname", func(f *File) { f.Records[0].IfName = "" }, "records[0].ifName: empty"},
		{"container chars", func(f *File) { f.Records[1].ContainerID = "../x" }, `records[1].containerID: "../x"`},
		{"long ifname", func(f *File) { f.Records[0].IfName = "eth0123456789abc" }, "records[0].ifName"},
		{"ifname slash", func(f *File) { f.Records[0].IfName = "a/b" }, `records[0].ifName: "a/b"`},
		{"ifname dot", func(f *File) { f.Records[3].IfName = ".." }, `records[3].ifName: ".."`},
		{"cooldown no release", func(f *File) { f.Records[1].ReleasedAt = time.Time{} }, "records[1].releasedAt: missing"},
		{"netns relative", func(f *File) { f.Records[0].Netns = "netns/x" }, `records[0].netns: "netns/x", expected an absolute path`},
		{"pod half", func(f *File) { f.Records[0].PodNamespace = "" }, "records[0].podName: namespace"},
		{"reason control", func(f *File) { f.Records[2].Reason = "a\nb" }, "records[2].reason"},
		{"two assigned one ip", func(f *File) {
			f.Records = append(f.Records, Record{ContainerID: "x", IfName: "eth0", IP: f.Records[0].IP, ENI: "eni-a", State: Assigned})
		}, "records[4].ip: 10.0.1.5 is already held by records[0] (Assigned)"},
		{"assigned and cooldown one ip", func(f *File) { f.Records[1].IP = f.Records[0].IP }, "records[1].ip: 10.0.1.5 is already held by records[0]"},
		{"two cooldown one ip", func(f *File) {
			f.Records = append(f.Records, Record{IP: f.Records[1].IP, ENI: "eni-a", State: Cooldown, ReleasedAt: t0})
		}, "records[4].ip: 10.0.1.6 is already held by records[1] (Cooldown)"},
		{"one pod twice", func(f *File) {
			f.Records = append(f.Records, Record{ContainerID: "c0ffee01", IfName: "eth0", IP: netip.MustParseAddr("10.0.1.9"), ENI: "eni-a", State: Assigned})
		}, "records[4].containerID: container c0ffee01 interface eth0 already holds records[0] (10.0.1.5)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := sample()
			c.change(f)
			err := f.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want an error saying %q", err, c.want)
			}
		})
	}
	// What may repeat: an address among Quarantined records and beside an Assigned one (the sample has that), a
	// pod in an Assigned and a Cooldown record (added again after its release), an empty ENI when Quarantined.
	f := sample()
	f.Records = append(f.Records,
		Record{IP: f.Records[2].IP, State: Quarantined},
		Record{ContainerID: "c0ffee02", IfName: "eth0", IP: netip.MustParseAddr("10.0.1.8"), ENI: "eni-a", State: Assigned})
	if err := f.Validate(); err != nil {
		t.Fatalf("allowed repeats refused: %v", err)
	}
	// Many problems: the message stays bounded and says how many it left out.
	f = &File{Version: Version, Instance: "i-1"}
	for range 30 {
		f.Records = append(f.Records, Record{State: "x"})
	}
	err := f.Validate()
	if err == nil || !strings.Contains(err.Error(), "and 70 more") || strings.Contains(err.Error(), "records[10]") {
		t.Fatalf("30 bad records: %v", err)
	}
}

func TestMigrateChain(t *testing.T) {
	var order []int
	steps := map[int]step{
		1: func(b []byte) ([]byte, error) { order = append(order, 1); return append(b, 'b'), nil },
		2: func(b []byte) ([]byte, error) { order = append(order, 2); return append(b, 'c'), nil },
	}
	out, err := migrate([]byte("a"), 1, 3, steps)
	if err != nil || string(out) != "abc" || fmt.Sprint(order) != "[1 2]" {
		t.Fatalf("1 -> 3: %q %v %v", out, err, order)
	}
	if out, err := migrate([]byte("a"), 3, 3, steps); err != nil || string(out) != "a" {
		t.Fatalf("current version: %q %v", out, err)
	}
	if _, err := migrate([]byte("a"), 1, 4, steps); err == nil || !strings.Contains(err.Error(), "version 3: no upgrade to version 4") {
		t.Fatalf("missing step: %v", err)
	}
	boom := errors.New("boom")
	steps[2] = func([]byte) ([]byte, error) { return nil, boom }
	if _, err := migrate([]byte("a"), 1, 3, steps); !errors.Is(err, boom) || !strings.Contains(err.Error(), "from version 2 to 3") {
		t.Fatalf("failing step: %v", err)
	}
	// The real chain brings every known version to the current one.
	for v := 1; v < Version; v++ {
		if upgrade[v] == nil {
			t.Errorf("no upgrade from version %d", v)
		}
	}
}

func TestRecordValidate(t *testing.T) {
	for i, r := range sample().Records {
		if err := r.Validate(); err != nil {
			t.Errorf("records[%d]: %v", i, err)
		}
	}
	r := sample().Records[0]
	r.IP, r.IfName = netip.Addr{}, ""
	err := r.Validate()
	if err == nil || !strings.Contains(err.Error(), "ip: missing") || !strings.Contains(err.Error(), "ifName: empty") {
		t.Fatalf("record without ip and ifName: %v", err)
	}
}
