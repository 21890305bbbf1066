package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weftnet/weft/internal/policy/explain"
	"github.com/weftnet/weft/internal/testenv"
)

// weft policy explain against a real kube-apiserver: the verdict and its exit code, the deciding rule, an address
// found as a pod's, JSON for scripts, and bad usage named.
func TestPolicyExplainAgainstAPIServer(t *testing.T) {
	bin := testenv.WeftBin(t, "weft")
	k := testenv.StartAPIServer(t)
	ctx := context.Background()
	for _, ns := range []string{"x", "y"} {
		if _, err := k.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"ns": ns}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// No controller manager makes the default ServiceAccount the admission plugin wants for pods.
		if _, err := k.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []struct{ ns, name, ip, app string }{{"x", "client", "10.244.0.5", "client"}, {"y", "web-0", "10.244.1.7", "web"}} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: p.name, Labels: map[string]string{"app": p.app}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/pause",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}}}}
		created, err := k.Client.CoreV1().Pods(p.ns).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created.Status.PodIP, created.Status.PodIPs = p.ip, []corev1.PodIP{{IP: p.ip}}
		if _, err := k.Client.CoreV1().Pods(p.ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	http := intstr.FromString("http")
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "y", Name: "web"}, Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
			{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"ns": "x"}}}},
			Ports: []networkingv1.NetworkPolicyPort{{Port: &http}}}}}}
	if _, err := k.Client.NetworkingV1().NetworkPolicies("y").Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{"policy", "explain", "--kubeconfig", k.Kubeconfig}, args...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	out, code := run("--from", "x/client", "--to", "y/web-0", "--port", "8080/TCP")
	if code != 0 || !strings.Contains(out, "x/client -> y/web-0 on 8080/TCP: ALLOWED") || !strings.Contains(out, "y/web ingress[0] ADMITS") {
		t.Errorf("named port 8080: exit %d\n%s", code, out)
	}
	out, code = run("--from", "x/client", "--to", "10.244.1.7", "--port", "80")
	if code != 1 || !strings.Contains(out, "x/client -> y/web-0 on 80/TCP: DENIED") || !strings.Contains(out, "no (port)") {
		t.Errorf("port 80 to the pod's address: exit %d\n%s", code, out)
	}
	out, code = run("--from", "x/client", "--to", "y/web-0", "--port", "8080/tcp", "-o", "json")
	var r explain.Report
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || !r.Allowed || r.Ingress.Policies[0].Name != "y/web" {
		t.Errorf("json: exit %d\n%s", code, out)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--from", "client", "--to", "y/web-0", "--port", "80"}, 2, `--from "client": expected NAMESPACE/NAME`},
		{[]string{"--from", "x/client", "--to", "y/web-0", "--port", "80/ICMP"}, 2, `protocol "ICMP": expected TCP, UDP or SCTP`},
		{[]string{"--from", "x/client", "--to", "y/web-0", "--port", "70000"}, 2, `port "70000": expected 1..65535`},
		{[]string{"--from", "x/client", "--to", "nowhere", "--port", "80"}, 2, "expected NAMESPACE/NAME or an IP address"},
		{[]string{"--from", "x/ghost", "--to", "y/web-0", "--port", "80"}, 3, "pod x/ghost: not found"},
	} {
		if out, code := run(c.args...); code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("%v: exit %d %q, want %d with %q", c.args, code, out, c.code, c.want)
		}
	}
}
