package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/weftnet/weft/subnet"
)

// fakeDelegate records the delegate calls instead of running a plugin.
type fakeDelegate struct {
	dels   []string // the configurations DEL was given
	delErr error
}

func (f *fakeDelegate) install(t *testing.T) {
	add, del, warn := delegateAdd, delegateDel, warnings
	t.Cleanup(func() { delegateAdd, delegateDel, warnings = add, del, warn })
	delegateAdd = func(_ context.Context, _ string, _ []byte, _ invoke.Exec) (types.Result, error) {
		return &current.Result{CNIVersion: "1.0.0"}, nil
	}
	delegateDel = func(_ context.Context, typ string, conf []byte, _ invoke.Exec) error {
		f.dels = append(f.dels, typ+" "+string(conf))
		return f.delErr
	}
	warnings = &bytes.Buffer{}
}

// pluginConf is a plugin configuration whose subnet.env and dataDir live in a temporary directory.
func pluginConf(t *testing.T) (conf []byte, dataDir string) {
	t.Helper()
	dir := t.TempDir()
	envFile := filepath.Join(dir, "subnet.env")
	if err := subnet.WriteEnvFile(envFile, env(false, true)); err != nil {
		t.Fatal(err)
	}
	dataDir = filepath.Join(dir, "data")
	b, err := json.Marshal(map[string]any{"name": "cbr0", "cniVersion": "1.0.0", "type": "flannel", "subnetFile": envFile, "dataDir": dataDir})
	if err != nil {
		t.Fatal(err)
	}
	return b, dataDir
}

// A corrupt saved state used to make DEL fail for ever; CNI DEL must succeed: it releases with the configuration
// ADD would build now, warns, and removes the state, and a second DEL succeeds too.
func TestDelCorruptState(t *testing.T) {
	f := &fakeDelegate{}
	f.install(t)
	conf, dataDir := pluginConf(t)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dataDir, "ctr1")
	for _, corrupt := range []string{`{"type":"bri`, ``, `{"cniVersion":"1.0.0"}`} {
		f.dels = nil
		if err := os.WriteFile(state, []byte(corrupt), 0o600); err != nil {
			t.Fatal(err)
		}
		args := &skel.CmdArgs{ContainerID: "ctr1", StdinData: conf}
		if err := Del(args); err != nil {
			t.Fatalf("state %q: DEL: %v, want success", corrupt, err)
		}
		if len(f.dels) != 1 || !strings.HasPrefix(f.dels[0], "bridge ") || !strings.Contains(f.dels[0], "10.1.17.0/24") {
			t.Fatalf("state %q: delegate DELs %q, want one bridge DEL with the node subnet", corrupt, f.dels)
		}
		if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("state %q: state file left: %v", corrupt, err)
		}
		if !strings.Contains(warnings.(*bytes.Buffer).String(), "unusable") {
			t.Fatalf("state %q: no warning: %q", corrupt, warnings)
		}
		if err := Del(args); err != nil {
			t.Fatalf("second DEL: %v", err)
		}
	}
	// A delegate that fails with the rebuilt configuration does not make DEL fail either.
	f.delErr = errors.New("boom")
	if err := os.WriteFile(state, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Del(&skel.CmdArgs{ContainerID: "ctr1", StdinData: conf}); err != nil {
		t.Fatalf("DEL with a failing delegate on a corrupt state: %v", err)
	}
}

// ADD saves the delegate configuration (atomically: no temporary file is left beside it), and DEL hands exactly
// that to the delegate.
func TestAddSavesStateForDel(t *testing.T) {
	f := &fakeDelegate{}
	f.install(t)
	conf, dataDir := pluginConf(t)
	args := &skel.CmdArgs{ContainerID: "ctr2", StdinData: conf}
	stdout := os.Stdout
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	os.Stdout = devnull
	err := Add(args)
	os.Stdout = stdout
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dataDir)
	if err != nil || len(ents) != 1 || ents[0].Name() != "ctr2" {
		t.Fatalf("dataDir holds %v (%v), want just ctr2", ents, err)
	}
	saved, err := os.ReadFile(filepath.Join(dataDir, "ctr2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Del(args); err != nil || len(f.dels) != 1 || f.dels[0] != "bridge "+string(saved) {
		t.Fatalf("DEL: %v, delegate got %q, want the saved %s", err, f.dels, saved)
	}
}

// subnetFile naming an endless device fails at once with an error naming it, instead of reading for ever.
func TestSubnetFileCapped(t *testing.T) {
	f := &fakeDelegate{}
	f.install(t)
	conf := []byte(`{"name":"cbr0","type":"flannel","subnetFile":"/dev/zero","dataDir":"` + t.TempDir() + `"}`)
	err := Add(&skel.CmdArgs{ContainerID: "ctr3", StdinData: conf})
	if err == nil || !strings.Contains(err.Error(), "/dev/zero") {
		t.Fatalf("subnetFile /dev/zero: %v, want an error naming it", err)
	}
}
