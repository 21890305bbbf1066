// Package eni is weft's eni backend: pods hold VPC addresses, secondary IPv4 addresses of elastic network
// interfaces shared by the pods of one node, as Terway's ENIMultiIP mode with its policy-routing datapath. There
// is no per-node subnet, no overlay and no route-table entry per node: the VPC delivers a pod's address to the
// ENI that holds it, so the cluster is not capped by the route-table quota and VPC hosts see pods' own addresses.
//
// weftd runs a node agent (agent.go): it reads the instance type's limits from DescribeInstanceTypes, creates
// ENIs in the configured vSwitches and security groups (tagged as this cluster's and this node's), attaches them,
// finds them on the host by MAC and gives each its own route table; it keeps a warm pool of secondary addresses
// (internal/eni/pool) and checkpoints every allocation before the CNI plugin gets its answer
// (internal/eni/checkpoint). weft's CNI plugin, weft-eni, asks for an address over a unix socket
// (internal/eni/cniproto, served by handler.go) and builds the pod's datapath (internal/eni/datapath). On every
// start the agent reconciles the checkpoint, the cloud and the host (internal/eni/reconcile) before it serves;
// garbage collection (gc.go) frees addresses no live pod holds and, on one elected node, deletes this cluster's
// ENIs left detached.
//
// Kubernetes mode only: pods are read from the API, and the node's NetworkUnavailable condition and capacity
// annotation are written by this backend (Outputs.PublishesNodeStatus).
package eni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/subnet"
)

// Name is the backend's net-conf Backend.Type.
const Name = "eni"

func init() {
	backend.RegisterSubnetless(Name, New)
	backend.RegisterConfigCheck(Name, func(raw json.RawMessage) error { _, err := ParseConfig(raw); return err })
}

type eniBackend struct {
	deps backend.Deps
	m    *metrics // once per backend: RegisterNetwork is retried and must not register them again

	mu     sync.Mutex // the Kubernetes seams, built once (wiring.go)
	status *KubeNodeStatus
	events *KubeEvents
	pods   *KubePods
	nodes  *KubeNodes
}

// New builds the backend. It needs Kubernetes mode (pods are read from the API) and a coordinator (one node
// deletes the cluster's detached ENIs).
func New(deps backend.Deps) (backend.Backend, error) {
	if deps.Kube == nil || deps.NodeName == "" {
		return nil, fmt.Errorf("Backend.Type %q needs Kubernetes mode (--kube-subnet-mgr): pods and their addresses are read from the Kubernetes API, which etcd mode does not have", Name)
	}
	if deps.Coordinator == nil {
		return nil, errors.New("eni: needs leader election through the cluster store (to garbage-collect detached ENIs from one node), which this daemon does not provide")
	}
	return &eniBackend{deps: deps, m: newMetrics(deps.Registerer)}, nil
}

// RegisterNetwork reads the configuration, builds the cloud client from the instance metadata and the
// credential chain, and starts the node agent's reconcile of the three truths; it returns once the agent can
// serve the CNI plugin (addresses may still be on their way).
func (b *eniBackend) RegisterNetwork(ctx context.Context, sc *subnet.Config) (backend.Network, error) {
	cfg, err := ParseConfig(sc.Backend)
	if err != nil {
		return nil, err
	}
	var static *aliyun.Credentials
	if cfg.AccessKeyID != "" {
		static = &aliyun.Credentials{AccessKeyID: cfg.AccessKeyID, AccessKeySecret: cfg.AccessKeySecret}
	}
	api, id, err := aliyun.NewFromMetadata(ctx, aliyun.Options{Region: cfg.RegionID, VPCID: cfg.VPCID, Static: static,
		Need: aliyun.NeedInstance | aliyun.NeedVPC | aliyun.NeedVPCCIDR, Registerer: b.deps.Registerer, Getenv: os.Getenv})
	if err != nil {
		return nil, fmt.Errorf("eni: %w", err)
	}
	d := agentDeps{cfg: cfg, deps: b.deps, cloud: api, meta: &aliyun.Metadata{BaseURL: id.Env.MetadataURL()}, identity: id, m: b.m}
	if err := b.kubeSeams(ctx, &d); err != nil {
		return nil, err
	}
	if d.cfg.ClusterID, err = clusterID(ctx, d); err != nil {
		return nil, err
	}
	return startAgent(ctx, d)
}
