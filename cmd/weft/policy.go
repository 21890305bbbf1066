package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftnet/weft/internal/policy/explain"
)

// policyCmd: weft policy explain --from NS/POD --to NS/POD|IP --port PORT/PROTO [--kubeconfig F] [-o json]
// [--timeout 30s]. Exit 0 allowed, 1 denied, 2 bad usage, 3 when the API cannot be read.
func policyCmd(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "explain" {
		fmt.Fprintln(os.Stderr, "usage: weft policy explain --from NS/POD --to NS/POD|IP --port PORT/PROTO [--kubeconfig FILE] [-o json]")
		return exitError{2}
	}
	return failWith("policy explain", 3, policyExplain(ctx, args[1:]))
}

func policyExplain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	from := fs.String("from", "", "the connecting pod, NAMESPACE/NAME")
	to := fs.String("to", "", "the pod connected to, NAMESPACE/NAME, or an address (a pod's, found by status.podIP, or one outside the cluster)")
	port := fs.String("port", "", "the destination port and protocol, such as 80/TCP (TCP when the protocol is left out)")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else in-cluster)")
	out := fs.String("o", "text", "output: text or json")
	timeout := fs.Duration("timeout", defaultTimeout, "give up (exit 3) when the API has not answered within this time")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitError{2}
	}
	usage := func(format string, a ...any) error {
		fmt.Fprintf(os.Stderr, "weft policy explain: "+format+"\n", a...)
		return exitError{2}
	}
	fromNS, fromName, ok := splitRef(*from)
	if !ok {
		return usage("--from %q: expected NAMESPACE/NAME", *from)
	}
	proto, num, err := parsePort(*port)
	if err != nil {
		return usage("--port %q: %v", *port, err)
	}
	toIP, ipErr := netip.ParseAddr(*to)
	toNS, toName, isRef := splitRef(*to)
	if ipErr != nil && !isRef {
		return usage("--to %q: expected NAMESPACE/NAME or an IP address", *to)
	}
	if *out != "text" && *out != "json" {
		return usage("-o %q: expected text or json", *out)
	}
	ctx, cancel, err := withTimeout(ctx, *timeout)
	if err != nil {
		return err
	}
	defer cancel()
	client, err := kubeClient(*kubeconfig)
	if err != nil {
		return err
	}
	in := explain.Input{Protocol: proto, Port: num}
	if in.From, err = getPod(ctx, client, fromNS, fromName); err != nil {
		return err
	}
	if isRef {
		if in.To, err = getPod(ctx, client, toNS, toName); err != nil {
			return err
		}
	} else {
		in.ToIP = toIP.Unmap()
		pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("status.podIP", in.ToIP.String()).String()})
		if err != nil {
			return fmt.Errorf("find the pod of %s: %w", in.ToIP, err)
		}
		for i := range pods.Items {
			if !pods.Items[i].Spec.HostNetwork {
				in.To = &pods.Items[i]
				break
			}
		}
	}
	nss, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list namespaces: %w", err)
	}
	in.Namespaces = nss.Items
	seen := map[string]bool{}
	for _, p := range []*corev1.Pod{in.From, in.To} {
		if p == nil || seen[p.Namespace] {
			continue
		}
		seen[p.Namespace] = true
		nps, err := client.NetworkingV1().NetworkPolicies(p.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list the network policies of namespace %s: %w", p.Namespace, err)
		}
		in.Policies = append(in.Policies, nps.Items...)
	}
	r := explain.Explain(in)
	if *out == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		r.Write(os.Stdout)
	}
	if !r.Allowed {
		return exitError{1}
	}
	return nil
}

func splitRef(s string) (ns, name string, ok bool) {
	ns, name, ok = strings.Cut(s, "/")
	return ns, name, ok && ns != "" && name != "" && !strings.Contains(name, "/")
}

// parsePort reads 80, 80/TCP, 53/udp.
func parsePort(s string) (corev1.Protocol, int32, error) {
	n, p, hasProto := strings.Cut(s, "/")
	proto := corev1.ProtocolTCP
	if hasProto {
		proto = corev1.Protocol(strings.ToUpper(p))
		if proto != corev1.ProtocolTCP && proto != corev1.ProtocolUDP && proto != corev1.ProtocolSCTP {
			return "", 0, fmt.Errorf("protocol %q: expected TCP, UDP or SCTP", p)
		}
	}
	v, err := strconv.Atoi(n)
	if err != nil || v < 1 || v > 65535 {
		return "", 0, fmt.Errorf("port %q: expected 1..65535", n)
	}
	return proto, int32(v), nil
}

func getPod(ctx context.Context, c kubernetes.Interface, ns, name string) (*corev1.Pod, error) {
	p, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("pod %s/%s: not found", ns, name)
	}
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", ns, name, err)
	}
	return p, nil
}

// kubeClient builds a client from --kubeconfig, else the usual loading rules ($KUBECONFIG, ~/.kube/config), else
// the in-cluster configuration.
func kubeClient(path string) (kubernetes.Interface, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if path != "" {
		rules.ExplicitPath = path
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return kubernetes.NewForConfig(cfg)
}
