// Package install is the install-cni step of the DaemonSet's init container: it copies the CNI plugin binaries
// into the host's CNI bin directory and writes the conflist into the CNI conf directory. Both are written through
// a temporary file and a rename, so the kubelet never sees a partial binary or config, and the conflist is only
// rewritten when its content differs.
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
)

// DefaultConflist is upstream kube-flannel.yml's 10-flannel.conflist.
//
//go:embed 10-flannel.conflist
var DefaultConflist []byte

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
	var probe map[string]any
	if err := json.Unmarshal(o.Conflist, &probe); err != nil {
		return fmt.Errorf("conflist: not valid JSON: %w", err)
	}
	if _, ok := probe["plugins"]; !ok {
		return errors.New(`conflist: no "plugins" list`)
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
