package plan

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// The JSON layout is an interface for scripts: the golden files pin every field name and value.
func TestJSONGolden(t *testing.T) {
	vpc := netip.MustParsePrefix("192.168.0.0/16")
	cases := map[string]Input{
		"vpc": {PodCIDRs: prefixes("172.16.0.0/16"), ServiceCIDRs: prefixes("10.96.0.0/12"), VPCCIDR: vpc,
			VSwitchCIDRs: prefixes("192.168.0.0/24", "192.168.1.0/24"), PodVSwitchCIDRs: prefixes("192.168.64.0/18"),
			InstanceTypes: []instanceType{itype(t, "ecs.c7.4xlarge"), itype(t, "ecs.c6.4xlarge")},
			TypeSource:    builtinSource, Nodes: 180},
		"overlay-failing": {PodCIDRs: prefixes("172.16.0.0/20", "fd00:10:244::/56"), ServiceCIDRs: prefixes("10.96.0.0/12"),
			Nodes: 20, MaxPods: 110, Backends: []string{VXLAN, HostGW}},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetIndent("", "  ")
			if err := enc.Encode(mustMake(t, in)); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("JSON differs from %s (run with -update after an intended change):\n%s", golden, buf.String())
			}
		})
	}
}

func TestTextOutput(t *testing.T) {
	p := mustMake(t, Input{PodCIDRs: prefixes("172.16.0.0/20"), Nodes: 20, Backends: []string{VXLAN, HostGW}})
	var buf bytes.Buffer
	if err := p.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"BACKEND", "vxlan", "16", "PodCIDRTooSmall", "use a /19 pod CIDR", "No backend fits"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, buf.String())
		}
	}
}
