// Package readfile reads small configuration and state files with a size cap, so a path that names a device or
// an endless stream (/dev/zero, a FIFO fed without end) fails with an error naming the file instead of filling
// memory.
package readfile

import (
	"fmt"
	"io"
	"os"
)

// DefaultMax is the cap for weft's own files (subnet.env, net-conf.json, CNI state): far above any real one.
const DefaultMax = 1 << 20

// Limited reads at most max bytes of path; a longer file is an error naming it and the cap. Errors opening or
// reading it are os's, which name the path already.
func Limited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes, which no such file is", path, max)
	}
	return b, nil
}
