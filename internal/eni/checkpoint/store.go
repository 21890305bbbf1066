package checkpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/weftnet/weft/internal/readfile"
)

// MaxSize bounds the bytes Load reads and Save writes: 16 MiB, some 50,000 records, hundreds of times what a node
// holds. A larger file (or a device or endless stream at Path) is refused, not read without end.
const MaxSize = 16 << 20

// Store keeps the checkpoint in one file, e.g. /var/lib/weft/eni/checkpoint.json.
type Store struct{ Path string }

// Load reads the checkpoint. A missing file is an empty checkpoint of the current version (a new node). Anything
// else it cannot read with certainty (unreadable, larger than MaxSize, corrupt, truncated, invalid, a version it
// does not know) is an error naming the path and the problem; the file is left as it is, for the operator and for
// the weft that wrote it. Temporary files a crashed Save left beside it are never read.
func (s Store) Load() (*File, error) {
	if s.Path == "" {
		return nil, errors.New("checkpoint: no path")
	}
	data, err := readfile.Limited(s.Path, MaxSize)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{Version: Version}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err) // os and readfile name the path
	}
	f, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w; the file is left as it is", s.Path, err)
	}
	return f, nil
}

// Save writes f as the current Version, atomically: a temporary file in the same directory (so the rename does
// not cross file systems), written, made 0600, fsynced, renamed over Path, and the directory fsynced so the rename
// itself survives a power loss. The directory is created 0700 if missing. A file that Validate refuses (or larger
// than MaxSize) is not written: Load would refuse it on the next start. An error before the rename leaves Path as
// it was and no temporary file; an error fsyncing the directory after it means the new file is in place but may
// not survive a power loss. Either way Path never holds a partial file. f itself is not modified.
func (s Store) Save(f *File) error {
	if s.Path == "" {
		return errors.New("checkpoint: no path")
	}
	if f == nil {
		return fmt.Errorf("checkpoint %s: nothing to save", s.Path)
	}
	c := *f
	c.Version = Version
	if err := c.Validate(); err != nil {
		return fmt.Errorf("checkpoint %s: not saved: %w", s.Path, err)
	}
	data, err := encode(&c)
	if err != nil {
		return fmt.Errorf("checkpoint %s: not saved: %w", s.Path, err)
	}
	if len(data) > MaxSize {
		return fmt.Errorf("checkpoint %s: not saved: %d bytes, more than the %d Load reads", s.Path, len(data), MaxSize)
	}
	if err := writeAtomic(s.Path, data, writeAll); err != nil {
		return fmt.Errorf("checkpoint %s: %w", s.Path, err)
	}
	return nil
}

// writeAll is how writeAtomic fills the temporary file; tests replace it to fail halfway.
func writeAll(f *os.File, data []byte) error {
	_, err := f.Write(data)
	return err
}

// tempPattern names Save's temporary files: hidden, beside the checkpoint, never the checkpoint's own name.
func tempPattern(path string) string { return "." + filepath.Base(path) + ".tmp-*" }

func writeAtomic(path string, data []byte, write func(*os.File, []byte) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tempPattern(path))
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close() // a second close only reports ErrClosed
			os.Remove(tmp)
		}
	}()
	if err := write(f, data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	// From here the new file is in place; a failed directory fsync is still reported, since the rename may not
	// survive a power loss.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
