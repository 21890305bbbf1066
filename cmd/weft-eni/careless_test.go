package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The binary as a careless runtime runs it with weftd down: ADD answers CNI error 11 (try again later) on stdout,
// saying weftd is not serving the socket, and exits non-zero; DEL succeeds; a missing container ID and garbage on
// stdin are CNI errors, never a panic. (No CNI_COMMAND at all prints skel's "about" text and exits 0.)
func TestBinaryWithWeftdDown(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "weft-eni")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	sock := filepath.Join(dir, "none.sock")
	conf := `{"cniVersion":"1.0.0","name":"weft","type":"weft-eni","socket":"` + sock + `","dataDir":"` + filepath.Join(dir, "data") + `"}`
	run := func(env []string, stdin string) (string, string, error) {
		c := exec.Command(bin)
		c.Env = append([]string{"CNI_PATH=" + dir}, env...)
		c.Stdin = strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		c.Stdout, c.Stderr = &out, &errOut
		err := c.Run()
		return out.String(), errOut.String(), err
	}
	pod := []string{"CNI_CONTAINERID=abc123", "CNI_NETNS=/var/run/netns/x", "CNI_IFNAME=eth0",
		"CNI_ARGS=K8S_POD_NAMESPACE=default;K8S_POD_NAME=web"}
	type cniError struct {
		Code uint
		Msg  string
	}
	out, _, err := run(append([]string{"CNI_COMMAND=ADD"}, pod...), conf)
	var e cniError
	if err == nil || json.Unmarshal([]byte(out), &e) != nil || e.Code != 11 || !strings.Contains(e.Msg, "weftd is not serving") || !strings.Contains(e.Msg, sock) {
		t.Errorf("ADD with weftd down: %q %v, want error 11 saying weftd is not serving %s", out, err, sock)
	}
	if out, errOut, err := run(append([]string{"CNI_COMMAND=DEL"}, pod...), conf); err != nil || !strings.Contains(errOut, sock) {
		t.Errorf("DEL with weftd down: %q %q %v, want success saying weftd was unreachable", out, errOut, err)
	}
	for name, c := range map[string]struct {
		env   []string
		stdin string
	}{
		"no container ID":  {[]string{"CNI_COMMAND=ADD", "CNI_NETNS=/x", "CNI_IFNAME=eth0"}, conf},
		"garbage on stdin": {append([]string{"CNI_COMMAND=ADD"}, pod...), "\x00\xff{garbage"},
	} {
		out, errOut, err := run(c.env, c.stdin)
		if err == nil || strings.Contains(errOut, "panic") || json.Unmarshal([]byte(out), &e) != nil || e.Code == 0 {
			t.Errorf("%s: %q %q %v, want a CNI error", name, out, errOut, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Errorf("dataDir made without a successful ADD: %v", err)
	}
}
