package lab

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/weftnet/weft/internal/bandwidth"
)

// recExec is libcni's exec recording each plugin's stdin and answering a fixed result.
type recExec struct{ stdin map[string][]byte }

func (e *recExec) ExecPlugin(_ context.Context, path string, stdin []byte, _ []string) ([]byte, error) {
	e.stdin[filepath.Base(path)] = stdin
	return []byte(`{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/32"}]}`), nil
}
func (e *recExec) FindInPath(p string, _ []string) (string, error) { return "/bin/" + p, nil }
func (e *recExec) Decode(b []byte) (version.PluginInfo, error) {
	var d version.PluginDecoder
	return d.Decode(b)
}

// A sandbox's bandwidth annotations reach, as runtimeConfig.bandwidth, exactly the plugins declaring the
// capability, with containerd's values.
func TestRuntimeBandwidthCapability(t *testing.T) {
	list := `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a","capabilities":{"bandwidth":true}},{"type":"b"}]}`
	r, err := NewRuntime("unused", t.TempDir(), t.TempDir(), []byte(list))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recExec{stdin: map[string][]byte{}}
	r.cni = libcni.NewCNIConfigWithCacheDir([]string{"/bin"}, t.TempDir(), rec)
	s := Sandbox{ContainerID: "c1", Netns: "/var/run/netns/x", Namespace: "default", Name: "p",
		Annotations: map[string]string{bandwidth.IngressAnnotation: "40M", "other": "x"}}
	if _, err := r.Add(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	var a struct {
		RuntimeConfig struct {
			Bandwidth *bandwidth.Limits `json:"bandwidth"`
		} `json:"runtimeConfig"`
	}
	if err := json.Unmarshal(rec.stdin["a"], &a); err != nil {
		t.Fatal(err)
	}
	want := bandwidth.Limits{IngressRate: 40e6, IngressBurst: math.MaxUint32}
	if a.RuntimeConfig.Bandwidth == nil || *a.RuntimeConfig.Bandwidth != want {
		t.Errorf("plugin a got %s, want runtimeConfig.bandwidth %+v", rec.stdin["a"], want)
	}
	if strings.Contains(string(rec.stdin["b"]), "runtimeConfig") {
		t.Errorf("plugin b, without the capability, got %s", rec.stdin["b"])
	}
	// DEL passes them again (libcni caches them with the result).
	rec.stdin = map[string][]byte{}
	if err := r.Del(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rec.stdin["a"]), `"ingressRate":40000000`) {
		t.Errorf("DEL: plugin a got %s", rec.stdin["a"])
	}
	// An annotation containerd refuses fails the sandbox before any plugin runs.
	rec.stdin = map[string][]byte{}
	s.Annotations = map[string]string{bandwidth.EgressAnnotation: "1"}
	if _, err := r.Add(context.Background(), s); err == nil || !strings.Contains(err.Error(), bandwidth.EgressAnnotation) {
		t.Errorf("ADD with egress-bandwidth 1: %v", err)
	}
	if len(rec.stdin) != 0 {
		t.Errorf("plugins ran: %v", rec.stdin)
	}
}

func TestCapabilityArgsNone(t *testing.T) {
	if c, err := CapabilityArgs(map[string]string{"a": "b"}); c != nil || err != nil {
		t.Errorf("%v %v", c, err)
	}
}

func TestFlannelConflist(t *testing.T) {
	n := &Node{Dir: "/tmp/n1"}
	b, err := n.FlannelConflist([]byte(`{"name":"cbr0","cniVersion":"0.3.1","plugins":[{"type":"flannel","delegate":{"hairpinMode":true}},` +
		`{"type":"bandwidth","capabilities":{"bandwidth":true}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	l, err := libcni.ConfListFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	_ = json.Unmarshal(l.Plugins[0].Bytes, &f)
	if f["subnetFile"] != "/tmp/n1/subnet.env" || f["delegate"].(map[string]any)["hairpinMode"] != true || l.Plugins[1].Network.Type != "bandwidth" ||
		!l.Plugins[1].Network.Capabilities["bandwidth"] {
		t.Errorf("%s", b)
	}
	if _, err := n.FlannelConflist([]byte(`{"plugins":[{"type":"bridge"}]}`)); err == nil {
		t.Error("a conflist without flannel accepted")
	}
}
