package engine

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/weftnet/weft/internal/policy"
)

// Watch feeds the engine from three informers (every pod, trimmed by TrimPod; namespaces, trimmed to their
// labels; network policies) until ctx ends, and returns once all three have synced (or ctx's error).
func Watch(ctx context.Context, client kubernetes.Interface, e *Engine) error {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(trim))
	pods := f.Core().V1().Pods().Informer()
	nss := f.Core().V1().Namespaces().Informer()
	nps := f.Networking().V1().NetworkPolicies().Informer()
	handlers := []struct {
		inf cache.SharedIndexInformer
		set func(any)
		del func(any)
	}{
		{pods, func(o any) {
			if p, ok := o.(*corev1.Pod); ok {
				e.SetPod(policy.PodOf(p), p.Spec.NodeName)
			}
		}, func(o any) {
			if p, ok := deleted(o).(*corev1.Pod); ok {
				e.DeletePod(p.Namespace, p.Name)
			}
		}},
		{nss, func(o any) {
			if n, ok := o.(*corev1.Namespace); ok {
				e.SetNamespace(n.Name, labels.Set(n.Labels))
			}
		}, func(o any) {
			if n, ok := deleted(o).(*corev1.Namespace); ok {
				e.DeleteNamespace(n.Name)
			}
		}},
		{nps, func(o any) {
			if np, ok := o.(*networkingv1.NetworkPolicy); ok {
				p, err := policy.Compile(np)
				e.SetPolicy(np.Namespace, np.Name, p, err)
			}
		}, func(o any) {
			if np, ok := deleted(o).(*networkingv1.NetworkPolicy); ok {
				e.DeletePolicy(np.Namespace, np.Name)
			}
		}},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: h.set,
			UpdateFunc: func(_, o any) { h.set(o) }, DeleteFunc: h.del}); err != nil {
			return fmt.Errorf("network policy: informer: %w", err)
		}
	}
	f.Start(ctx.Done())
	for _, s := range []struct {
		inf  cache.SharedIndexInformer
		what string
	}{{pods, "pods"}, {nss, "namespaces"}, {nps, "networkpolicies"}} {
		if !cache.WaitForCacheSync(ctx.Done(), s.inf.HasSynced) {
			return fmt.Errorf("network policy: the %s informer did not sync (is the API server reachable, may this node list and watch %s?): %w", s.what, s.what, ctx.Err())
		}
	}
	e.Informed()
	return nil
}

func deleted(o any) any {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		return d.Obj
	}
	return o
}

// trim is the informers' transform: pods by TrimPod, namespaces to name and labels, policies without managed
// fields and annotations.
func trim(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return TrimPod(o)
	case *corev1.Namespace:
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.Name, UID: o.UID, ResourceVersion: o.ResourceVersion, Labels: o.Labels}}, nil
	case *networkingv1.NetworkPolicy:
		t := o.DeepCopy()
		t.ManagedFields, t.Annotations = nil, nil
		return t, nil
	}
	return obj, nil
}

// Getter reads a pod from the API server for Ensure (Config.Get): ErrNoSuchPod when it does not exist.
func Getter(client kubernetes.Interface) func(ctx context.Context, namespace, name string) (*policy.Pod, string, error) {
	return func(ctx context.Context, namespace, name string) (*policy.Pod, string, error) {
		p, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, "", fmt.Errorf("network policy: pod %s/%s: %w", namespace, name, ErrNoSuchPod)
		}
		if err != nil {
			return nil, "", fmt.Errorf("network policy: read pod %s/%s: %w", namespace, name, err)
		}
		return policy.PodOf(p), p.Spec.NodeName, nil
	}
}
