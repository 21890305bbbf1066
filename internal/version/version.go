// Package version holds weft's build version, stamped at link time with
// -X github.com/weftnet/weft/internal/version.Version=<git describe>.
package version

import "runtime"

// Version is the release (or git describe output) this binary was built from.
var Version = "dev"

// GoVersion is the Go toolchain that built the binary.
var GoVersion = runtime.Version()
