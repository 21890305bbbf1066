//go:build tools

// Package tools pins kube-apiserver and kube-controller-manager (k8s.io/kubernetes v1.37.2) for weft's tests.
// A separate module so that weft's own go.mod stays lean. Built by `make tools`.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
