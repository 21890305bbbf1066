package cni

import (
	"os"
	"path/filepath"
)

// writeState saves a container's delegate configuration atomically: a temporary file in the same directory,
// synced and renamed over the target, so a crash leaves the old file or the new one, never a torn one.
func writeState(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
