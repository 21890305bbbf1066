//go:build tools

// Package tools pins upstream flanneld v0.28.10 for weft's interop tests and benchmarks. The proxy does not serve
// the tencentcloud SDK versions flannel pins, so ./stub stands in for them (see stub/common/common.go).
package tools

import _ "github.com/flannel-io/flannel"
