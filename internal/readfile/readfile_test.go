package readfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLimited(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := Limited(small, 10); err != nil || string(b) != "0123456789" {
		t.Fatalf("10 bytes at a cap of 10: %q %v", b, err)
	}
	if _, err := Limited(small, 9); err == nil || !strings.Contains(err.Error(), small) {
		t.Fatalf("10 bytes at a cap of 9: %v, want an error naming the file", err)
	}
	// An endless device ends at the cap.
	if _, err := Limited("/dev/zero", DefaultMax); err == nil || !strings.Contains(err.Error(), "/dev/zero") {
		t.Fatalf("/dev/zero: %v", err)
	}
	if _, err := Limited(filepath.Join(dir, "none"), DefaultMax); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v, want ErrNotExist", err)
	}
}
