package daemon

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/internal/coordination"
	"github.com/weftnet/weft/subnet"
	"github.com/weftnet/weft/subnet/etcd"
	"github.com/weftnet/weft/subnet/kube"
)

// clusterStore is what the daemon reaches the cluster through: the subnet manager, the coordinator (elections,
// per-node status) on the same store and connection, a probe that tells whether the store answers (a read that
// needs the store itself, not a cache), and in Kubernetes mode the API client and this node's name.
type clusterStore struct {
	manager  subnet.Manager
	coord    coordination.Coordinator
	probe    func(context.Context) error
	kube     kubernetes.Interface
	nodeName string
}

// newStore builds the etcd or the Kubernetes cluster store from the options.
func newStore(ctx context.Context, o *Options) (*clusterStore, error) {
	if !o.KubeSubnetMgr {
		m, err := etcd.New(ctx, etcd.Options{
			Endpoints:   splitList(o.EtcdEndpoints),
			Prefix:      o.EtcdPrefix,
			KeyFile:     o.EtcdKeyfile,
			CertFile:    o.EtcdCertfile,
			CAFile:      o.EtcdCAFile,
			Username:    o.EtcdUsername,
			Password:    o.EtcdPassword,
			SubnetFile:  o.SubnetFile,
			RenewMargin: o.RenewMarginDuration(),
		})
		if err != nil {
			return nil, err
		}
		probe := func(ctx context.Context) error {
			_, err := m.Client().Get(ctx, m.Prefix()+"/config")
			return err
		}
		return &clusterStore{manager: m, coord: coordination.NewEtcd(m.Client(), m.Prefix()), probe: probe}, nil
	}
	rc, err := kubeRESTConfig(o)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	node := o.NodeName
	if node == "" {
		if o.PodName == "" || o.PodNamespace == "" {
			return nil, fmt.Errorf("kube subnet manager: set NODE_NAME (or POD_NAME and POD_NAMESPACE) to this node's name")
		}
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		pod, err := cs.CoreV1().Pods(o.PodNamespace).Get(pctx, o.PodName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("kube subnet manager: find node name from pod %s/%s: %w", o.PodNamespace, o.PodName, err)
		}
		node = pod.Spec.NodeName
		klog.Infof("node name %q from pod %s/%s", node, o.PodNamespace, o.PodName)
	}
	m, err := kube.New(ctx, kube.Options{
		Client:                    cs,
		NodeName:                  node,
		NetConfPath:               o.NetConfigPath,
		AnnotationPrefix:          o.KubeAnnotPrefix,
		SetNodeNetworkUnavailable: o.SetNodeNetUnav,
		ContinueWhenCacheNotReady: o.ContWhenCacheNR,
	})
	if err != nil {
		return nil, err
	}
	probe := func(ctx context.Context) error {
		_, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		return err
	}
	ns := o.PodNamespace
	if ns == "" {
		ns = "kube-system"
	}
	return &clusterStore{manager: m, coord: &coordination.Kube{Client: cs, Nodes: m, Namespace: ns}, probe: probe,
		kube: cs, nodeName: node}, nil
}

// kubeRESTConfig follows upstream: --kubeconfig-file if given, else the in-cluster config; --kube-api-url
// overrides the server address in both cases.
func kubeRESTConfig(o *Options) (*rest.Config, error) {
	var rc *rest.Config
	var err error
	if o.KubeConfigFile != "" || o.KubeAPIURL != "" {
		rc, err = clientcmd.BuildConfigFromFlags(o.KubeAPIURL, o.KubeConfigFile)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig-file=%q / --kube-api-url=%q: %w", o.KubeConfigFile, o.KubeAPIURL, err)
		}
	} else {
		rc, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("kube subnet manager: no --kubeconfig-file and not in a cluster: %w", err)
		}
	}
	rc.UserAgent = "weftd"
	return rc, nil
}
