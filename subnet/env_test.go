package subnet

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnvGolden(t *testing.T) {
	cases := map[string]Env{
		"v4.env": {EnableIPv4: true, Network: netip.MustParsePrefix("10.244.0.0/16"),
			Subnet: netip.MustParsePrefix("10.244.1.0/24"), MTU: 1450, IPMasq: true},
		"dual.env": {EnableIPv4: true, EnableIPv6: true, Network: netip.MustParsePrefix("10.244.0.0/16"),
			Subnet: netip.MustParsePrefix("10.244.1.0/24"), IPv6Network: netip.MustParsePrefix("2001:cafe:42::/56"),
			IPv6Subnet: netip.MustParsePrefix("2001:cafe:42::/64"), MTU: 1450, IPMasq: true},
		"v6.env": {EnableIPv6: true, IPv6Network: netip.MustParsePrefix("2001:cafe:42::/56"),
			IPv6Subnet: netip.MustParsePrefix("2001:cafe:42:5::/64"), MTU: 1430},
	}
	dir := t.TempDir()
	for name, e := range cases {
		want, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "run", "flannel", name)
		if err := WriteEnvFile(path, e); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		if string(got) != string(want) {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", name, got, want)
		}
		st, _ := os.Stat(path)
		dst, _ := os.Stat(filepath.Dir(path))
		if st.Mode().Perm() != 0o644 || dst.Mode().Perm() != 0o755 {
			t.Errorf("%s: modes file %v dir %v, want 0644 and 0755", name, st.Mode().Perm(), dst.Mode().Perm())
		}
		back, err := ReadEnvFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// FLANNEL_SUBNET carries the first usable address; the prefix is the same subnet.
		if back.MTU != e.MTU || back.IPMasq != e.IPMasq || back.Subnet.Masked() != e.Subnet || back.IPv6Subnet.Masked() != e.IPv6Subnet {
			t.Errorf("%s: read back %+v", name, back)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, "run", "flannel", ".*"))
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestParseEnvErrors(t *testing.T) {
	for in, want := range map[string]string{
		"FLANNEL_NETWORK=10.0.0.0/8\nFLANNEL_MTU=1450\n":                        "FLANNEL_SUBNET must",
		"FLANNEL_NETWORK=10.0.0.0/8\nFLANNEL_SUBNET=10.1.1.1/24\n":              "FLANNEL_MTU is missing",
		"FLANNEL_NETWORK=10.0.0.0\nFLANNEL_SUBNET=10.1.1.1/24\nFLANNEL_MTU=1\n": `FLANNEL_NETWORK="10.0.0.0"`,
		"garbage\n":          "expected KEY=VALUE",
		"FLANNEL_MTU=1450\n": "no FLANNEL_SUBNET",
	} {
		_, err := ParseEnv([]byte(in), "subnet.env")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseEnv(%q) = %v, want %q", in, err, want)
		}
	}
	if _, err := ReadEnvFile(filepath.Join(t.TempDir(), "nope.env")); err == nil || !strings.Contains(err.Error(), "nope.env") {
		t.Errorf("missing file error %v does not name the file", err)
	}
}
