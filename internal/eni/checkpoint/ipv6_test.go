package checkpoint

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dualSample is sample() with IPv6 partners on the Assigned and Cooldown records.
func dualSample() *File {
	f := sample()
	f.Records[0].IPv6 = netip.MustParseAddr("2408:4005:300:a100::5")
	f.Records[1].IPv6 = netip.MustParseAddr("2408:4005:300:a100::6")
	return f
}

func TestIPv6RoundTrip(t *testing.T) {
	s := Store{Path: filepath.Join(t.TempDir(), "checkpoint.json")}
	if err := s.Save(dualSample()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(s.Path)
	if !strings.Contains(string(b), `"ipv6": "2408:4005:300:a100::5"`) || strings.Count(string(b), `"ipv6"`) != 2 {
		t.Fatalf("the IPv6 partners are not in the file (or an empty one is):\n%s", b)
	}
	out, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := equalFile(out, dualSample()); err != nil {
		t.Fatal(err)
	}
	// An IPv4-only version 2 file (written before the field) loads with no IPv6 partner.
	if err := s.Save(sample()); err != nil {
		t.Fatal(err)
	}
	if out, err = s.Load(); err != nil || out.Records[0].IPv6.IsValid() {
		t.Fatalf("IPv4-only file: %+v %v", out, err)
	}
}

func TestIPv6Validate(t *testing.T) {
	if err := dualSample().Validate(); err != nil {
		t.Fatalf("dual sample: %v", err)
	}
	for _, c := range []struct {
		name   string
		change func(f *File)
		want   string
	}{
		{"ipv4 in ipv6", func(f *File) { f.Records[0].IPv6 = netip.MustParseAddr("10.0.1.9") }, "records[0].ipv6: 10.0.1.9, expected an IPv6 address"},
		{"4in6", func(f *File) { f.Records[0].IPv6 = netip.MustParseAddr("::ffff:10.0.0.1") }, "records[0].ipv6: ::ffff:10.0.0.1, expected an IPv6"},
		{"link-local", func(f *File) { f.Records[1].IPv6 = netip.MustParseAddr("fe80::1") }, "records[1].ipv6: fe80::1, expected a global unicast"},
		{"multicast", func(f *File) { f.Records[1].IPv6 = netip.MustParseAddr("ff02::1") }, "records[1].ipv6: ff02::1"},
		{"unspecified", func(f *File) { f.Records[0].IPv6 = netip.MustParseAddr("::") }, "records[0].ipv6: ::"},
		{"zone", func(f *File) { f.Records[0].IPv6 = netip.MustParseAddr("2408:4005:300:a100::5%eth0") }, "without a zone"},
		{"twice", func(f *File) { f.Records[1].IPv6 = f.Records[0].IPv6 }, "records[1].ipv6: 2408:4005:300:a100::5 is already held by records[0] (Assigned)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := dualSample()
			c.change(f)
			if err := f.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want an error saying %q", err, c.want)
			}
		})
	}
	// A Quarantined record may repeat an IPv6 address, as for IPv4.
	f := dualSample()
	f.Records[2].IPv6 = f.Records[0].IPv6
	if err := f.Validate(); err != nil {
		t.Fatalf("quarantined repeat refused: %v", err)
	}
}
