package datapath

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// The kernel resolves /proc/sys/net in the network namespace of the thread that opens the file, so each access
// holds the goroutine on its thread from open to close.

func sysctlPath(parts ...string) string {
	return filepath.Join(append([]string{"/proc/sys/net"}, parts...)...)
}

func readSysctl(path string) (string, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

// ensureSysctl writes v unless the value is already v.
func ensureSysctl(path, v string) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(b)) == v {
		return nil
	}
	return os.WriteFile(path, []byte(v+"\n"), 0o644)
}
