//go:build tools

// Package tools pins the etcd server and etcdctl used by weft's integration and end-to-end tests.
// Built by `make tools`; never linked into weft itself.
package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
