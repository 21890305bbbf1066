package dist_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// The pods' bandwidth annotations reach a plugin only through a conflist entry declaring the bandwidth
// capability: the bridge backends' conflist chains the reference plugin bandwidth after portmap, the eni backend's
// weft-eni declares it itself. manifests_test.go holds every manifest's cni-conf.json and install-cni's defaults
// equal to these files.
func TestConflistsDeclareBandwidth(t *testing.T) {
	type plugin struct {
		Type         string          `json:"type"`
		Capabilities map[string]bool `json:"capabilities"`
	}
	read := func(name string) []plugin {
		b, err := os.ReadFile(filepath.Join(distDir(t), "cni", name))
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Plugins []plugin `json:"plugins"`
		}
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("cni/%s: %v", name, err)
		}
		return c.Plugins
	}
	ps := read("10-flannel.conflist")
	var types []string
	for _, p := range ps {
		types = append(types, p.Type)
	}
	if len(ps) != 3 || ps[0].Type != "flannel" || ps[1].Type != "portmap" || ps[2].Type != "bandwidth" {
		t.Fatalf("cni/10-flannel.conflist chains %v, want flannel, portmap, bandwidth", types)
	}
	if !ps[1].Capabilities["portMappings"] || !ps[2].Capabilities["bandwidth"] || len(ps[2].Capabilities) != 1 {
		t.Errorf("cni/10-flannel.conflist capabilities %+v: want portmap's portMappings and bandwidth's bandwidth", ps)
	}
	ps = read("10-weft-eni.conflist")
	if len(ps) != 1 || ps[0].Type != "weft-eni" || !ps[0].Capabilities["bandwidth"] {
		t.Errorf("cni/10-weft-eni.conflist %+v: want weft-eni alone, declaring the bandwidth capability", ps)
	}
}
