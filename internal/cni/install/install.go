// Package install is the install-cni step of the DaemonSet's init container: it copies the CNI plugin binaries
// into the host's CNI bin directory and writes the conflist into the CNI conf directory. Both are written through
// a temporary file and a rename, so the kubelet never sees a partial binary or config, and the conflist is only
// rewritten when its content differs. Each backend has its defaults (ForBackend): 10-flannel.conflist (upstream's
// with the bandwidth plugin added) and the flannel plugin, or the eni backend's 10-weft-eni.conflist and the
// weft-eni plugin.
package install

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// DefaultConflist is upstream kube-flannel.yml's 10-flannel.conflist with the reference plugin bandwidth chained
// after portmap, for the pods' bandwidth annotations. Like bridge, host-local and portmap it comes from the node's
// CNI plugins (containernetworking/plugins, which every runtime package ships), not from install-cni.
//
//go:embed 10-flannel.conflist
var DefaultConflist []byte

// ENIConflist is the eni backend's: weft's plugin weft-eni, CNI 1.0.0, weftd's default socket, with the bandwidth
// capability (weft-eni applies the limits itself).
//
//go:embed 10-weft-eni.conflist
var ENIConflist []byte

// Backend is what a backend's pods need installed by default.
type Backend struct {
	Name     string
	ConfName string
	Conflist []byte
	Plugins  []string
}

// Backends are the backends whose pods install-cni knows how to set up, flannel's first (the default).
var Backends = []Backend{
	{Name: "flannel", ConfName: "10-flannel.conflist", Conflist: DefaultConflist, Plugins: []string{"/opt/bin/flannel"}},
	{Name: "eni", ConfName: "10-weft-eni.conflist", Conflist: ENIConflist, Plugins: []string{"/opt/bin/weft-eni"}},
}

// ForBackend is the backend's defaults; "" is flannel (every overlay and route backend's pods use the flannel
// plugin).
func ForBackend(name string) (Backend, error) {
	if name == "" {
		name = "flannel"
	}
	var names []string
	for _, b := range Backends {
		if b.Name == name {
			return b, nil
		}
		names = append(names, b.Name)
	}
	return Backend{}, fmt.Errorf("--backend %q: expected one of %s", name, strings.Join(names, ", "))
}

// Shadowing lists the CNI configuration files in confDir that sort before confName: the kubelet's runtime uses
// the first one, so any of them keeps confName from taking effect (e.g. a 10-flannel.conflist left on a node
// moved to the eni backend).
func Shadowing(confDir, confName string) ([]string, error) {
	ents, err := os.ReadDir(confDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		switch filepath.Ext(n) {
		case ".conf", ".conflist", ".json":
		default:
			continue
		}
		if n < confName && !e.IsDir() {
			out = append(out, n)
		}
	}
	return out, nil
}

// Options say what to install where.
type Options struct {
	Plugins  []string // plugin binaries to copy (e.g. /opt/bin/flannel)
	BinDir   string   // default /opt/cni/bin
	ConfDir  string   // default /etc/cni/net.d
	ConfName string   // default 10-flannel.conflist
	Conflist []byte   // default DefaultConflist
}

// Run installs the plugins and the conflist.
func Run(o Options) error {
	if o.BinDir == "" {
		o.BinDir = "/opt/cni/bin"
	}
	if o.ConfDir == "" {
		o.ConfDir = "/etc/cni/net.d"
	}
	if o.ConfName == "" {
		o.ConfName = "10-flannel.conflist"
	}
	if o.Conflist == nil {
		o.Conflist = DefaultConflist
	}
	if err := checkConfName(o.ConfName); err != nil {
		return err
	}
	if err := CheckConflist(o.Conflist); err != nil {
		return err
	}
	for _, p := range o.Plugins {
		if err := copyAtomic(p, filepath.Join(o.BinDir, filepath.Base(p)), 0o755); err != nil {
			return fmt.Errorf("install plugin %s into %s: %w", p, o.BinDir, err)
		}
	}
	dst := filepath.Join(o.ConfDir, o.ConfName)
	if cur, err := os.ReadFile(dst); err == nil && bytes.Equal(cur, o.Conflist) {
		return nil
	}
	if err := writeAtomic(dst, bytes.NewReader(o.Conflist), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}

// checkConfName refuses a configuration file name that would land outside the configuration directory.
func checkConfName(name string) error {
	if name == "." || name == ".." || strings.ContainsAny(name, `/\`) || filepath.Base(name) != name {
		return fmt.Errorf("--conf-name %q: expected a file name in the CNI configuration directory, without / or ..", name)
	}
	return nil
}

// CheckConflist checks that b is a CNI network configuration list as libcni loads it: an object with a name,
// a cniVersion and a non-empty "plugins" list of objects, each with a type.
func CheckConflist(b []byte) error {
	var c struct {
		Name       any   `json:"name"`
		CNIVersion any   `json:"cniVersion"`
		Plugins    []any `json:"plugins"`
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return fmt.Errorf("conflist: not a JSON object: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return fmt.Errorf(`conflist: "plugins" must be a list of plugin objects: %w`, err)
	}
	if len(c.Plugins) == 0 {
		return errors.New(`conflist: "plugins" must be a non-empty list`)
	}
	for i, p := range c.Plugins {
		m, ok := p.(map[string]any)
		if !ok {
			return fmt.Errorf(`conflist: plugins[%d] must be an object`, i)
		}
		if t, ok := m["type"].(string); !ok || t == "" {
			return fmt.Errorf(`conflist: plugins[%d] has no "type"`, i)
		}
	}
	if s, ok := c.Name.(string); !ok || s == "" {
		return errors.New(`conflist: "name" must be a non-empty string`)
	}
	if s, ok := c.CNIVersion.(string); !ok || s == "" {
		return errors.New(`conflist: "cniVersion" must be a non-empty string such as "1.0.0"`)
	}
	return nil
}

func copyAtomic(src, dst string, mode os.FileMode) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return writeAtomic(dst, f, mode)
}

func writeAtomic(dst string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err = io.Copy(tmp, r); err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// CopyFile copies src to dst atomically (a temporary file in dst's directory, then a rename), keeping src's
// permission bits: what upstream's /opt/bin/install-conf does for the conflist.
func CopyFile(src, dst string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := copyAtomic(src, dst, st.Mode().Perm()); err != nil {
		return fmt.Errorf("install %s as %s: %w", src, dst, err)
	}
	return nil
}
