package eni

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/internal/eni/cniproto"
)

func init() {
	configKeyCases = append(configKeyCases,
		configKeyCase{key: "pod_security_groups", value: `["sg-x","sg-y","sg-x"]`, check: func(c Config) bool { return slices.Equal(c.PodSecurityGroups, []string{"sg-x", "sg-y"}) }},
		configKeyCase{key: "pod_security_groups", value: `["sg-x","vsw-y"]`, errHas: []string{"Backend.pod_security_groups", `not "vsw-y"`}},
		configKeyCase{key: "pod_security_groups", value: `"sg-x"`, errHas: []string{"Backend.pod_security_groups", "a list of security group ids"}},
	)
}

func TestParsePodNet(t *testing.T) {
	r, err := ParsePodNet(map[string]string{AnnotationVSwitches: " vsw-b , vsw-a,vsw-b"}, map[string]string{AnnotationVSwitches: "vsw-ns", AnnotationSecurityGroups: "sg-ns"})
	if err != nil || !slices.Equal(r.VSwitches, []string{"vsw-b", "vsw-a"}) || !slices.Equal(r.SecurityGroups, []string{"sg-ns"}) {
		t.Fatalf("pod over namespace: %+v %v, want the pod's vSwitches (duplicate gone) and the namespace's groups", r, err)
	}
	if r, err := ParsePodNet(nil, nil); err != nil || r.VSwitches != nil || r.SecurityGroups != nil {
		t.Fatalf("nothing asked: %+v %v", r, err)
	}
	many := strings.Repeat("sg-a,", 10) + "sg-k"
	for _, c := range []struct {
		pod, ns map[string]string
		want    []string
	}{
		{pod: map[string]string{AnnotationVSwitches: ""}, want: []string{"pod annotation " + AnnotationVSwitches, "vsw-"}},
		{pod: map[string]string{AnnotationVSwitches: "vsw-a,,vsw-b"}, want: []string{"pod annotation " + AnnotationVSwitches}},
		{pod: map[string]string{AnnotationSecurityGroups: "sg-a;sg-b"}, want: []string{"pod annotation " + AnnotationSecurityGroups, `not "sg-a;sg-b"`}},
		{ns: map[string]string{AnnotationSecurityGroups: "vsw-a"}, want: []string{"namespace annotation " + AnnotationSecurityGroups}},
		{pod: map[string]string{AnnotationSecurityGroups: "sg-1,sg-2,sg-3,sg-4,sg-5,sg-6,sg-7,sg-8,sg-9,sg-10,sg-11"}, want: []string{"11 ids, expected at most 10"}},
		{pod: map[string]string{AnnotationSecurityGroups: strings.Repeat("x", 5000)}, want: []string{"5000 characters"}},
		{pod: map[string]string{AnnotationSecurityGroups: "SG-A"}, want: []string{AnnotationSecurityGroups}},
	} {
		_, err := ParsePodNet(c.pod, c.ns)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v / %v: %v, want %q", c.pod, c.ns, err, w)
			}
		}
	}
	if _, err := ParsePodNet(map[string]string{AnnotationSecurityGroups: many}, nil); err != nil {
		t.Errorf("ten groups and one repeated: %v", err) // sg-a repeated 10 times is one group, with sg-k two
	}
}

func TestPodNetPolicyClass(t *testing.T) {
	pol := PodNetPolicy{Zone: "z-a", ZoneVSwitches: []string{"vsw-1", "vsw-2"}, SecurityGroups: []string{"sg-d"}, PodSecurityGroups: []string{"sg-p"},
		KnownZones: map[string]string{"vsw-1": "z-a", "vsw-2": "z-a", "vsw-9": "z-b", "vsw-3": "z-a"}}
	if c, err := pol.Class(PodNetRequest{}); c != nil || err != nil {
		t.Fatalf("nothing asked: %v %v, want the default class (nil)", c, err)
	}
	c, err := pol.Class(PodNetRequest{VSwitches: []string{"vsw-2"}})
	if err != nil || !slices.Equal(c.VSwitches, []string{"vsw-2"}) || !slices.Equal(c.SecurityGroups, []string{"sg-d"}) {
		t.Fatalf("vsw-2 only: %+v %v, want vsw-2 with the default groups", c, err)
	}
	c, err = pol.Class(PodNetRequest{SecurityGroups: []string{"sg-p", "sg-d"}})
	if err != nil || !slices.Equal(c.VSwitches, []string{"vsw-1", "vsw-2"}) || !slices.Equal(c.SecurityGroups, []string{"sg-p", "sg-d"}) {
		t.Fatalf("groups only: %+v %v, want the zone's vSwitches with those groups", c, err)
	}
	for _, bad := range []struct {
		r    PodNetRequest
		want string
	}{
		{PodNetRequest{VSwitches: []string{"vsw-9"}}, "vSwitch vsw-9 is in zone z-b, not in the node's zone z-a"},
		{PodNetRequest{VSwitches: []string{"vsw-3"}}, "vSwitch vsw-3 is not one of the node zone's Backend.vswitches (vsw-1, vsw-2)"},
		{PodNetRequest{VSwitches: []string{"vsw-nope"}}, "vsw-nope is not one of"},
		{PodNetRequest{SecurityGroups: []string{"sg-other"}}, "security group sg-other is not one of Backend.security_group(s) or pod_security_groups"},
	} {
		if _, err := pol.Class(bad.r); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want %q", bad.r, err, bad.want)
		}
	}
}

func TestTrimPodKeepsPodNetAnnotations(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Annotations: map[string]string{
		AnnotationVSwitches: "vsw-a", AnnotationSecurityGroups: "sg-a", "other": "x"}}}
	got, err := TrimPod(p)
	if err != nil {
		t.Fatal(err)
	}
	ann := got.(*corev1.Pod).Annotations
	if len(ann) != 2 || ann[AnnotationVSwitches] != "vsw-a" || ann[AnnotationSecurityGroups] != "sg-a" {
		t.Fatalf("annotations %v, want the two podnet ones only", ann)
	}
	if info := podInfo(got.(*corev1.Pod)); info.NetAnnotations[AnnotationSecurityGroups] != "sg-a" {
		t.Fatalf("PodInfo %+v", info)
	}
}

// On alisim: a pod annotated with another security group (allowed by pod_security_groups) gets an address on an
// ENI weftd creates with exactly that group; an unannotated pod stays on an ENI of the configured group; a pod
// of a Namespace annotated so gets its Namespace's group; a malformed annotation and another zone's vSwitch fail
// the ADD (BadRequest) naming the annotation, and nothing is held for them.
func TestHandlerPodSecurityGroups(t *testing.T) {
	if !runInFreshNetns(t) {
		return
	}
	pods := []*corev1.Pod{testPod("plain", testNode), testPod("own", testNode), testPod("bad", testNode), testPod("zone", testNode)}
	pods[1].Annotations = map[string]string{AnnotationSecurityGroups: "sg-alisim0002"}
	pods[2].Annotations = map[string]string{AnnotationSecurityGroups: "sg-alisim0002;sg-alisim0001"}
	pods[3].Annotations = map[string]string{AnnotationVSwitches: "vsw-alisim0002"}
	inNS := testPod("inns", testNode)
	inNS.Namespace = "team"
	pods = append(pods, inNS)
	e := newHandlerEnv(t, `,"pod_security_groups":["sg-alisim0002"]`, pods...)
	e.n.d.namespaces = KubeNamespaces{Client: e.kube}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team",
		Annotations: map[string]string{AnnotationSecurityGroups: "sg-alisim0002"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	groupsOf := func(eniID string) []string {
		t.Helper()
		l, err := e.cl.ENIs(ctx, aliyun.ENIFilter{IDs: []string{eniID}})
		if err != nil || len(l) != 1 {
			t.Fatalf("DescribeNetworkInterfaces %s: %v %v", eniID, l, err)
		}
		return l[0].SecurityGroupIDs
	}
	plain, err := e.n.Add(ctx, addReq("plain"))
	if err != nil {
		t.Fatal(err)
	}
	own, err := e.n.Add(ctx, addReq("own"))
	if err != nil {
		t.Fatal(err)
	}
	if g := groupsOf(plain.ENI.ID); !slices.Equal(g, []string{"sg-alisim0001"}) {
		t.Errorf("unannotated pod on %s in groups %v, want [sg-alisim0001]", plain.ENI.ID, g)
	}
	if g := groupsOf(own.ENI.ID); !slices.Equal(g, []string{"sg-alisim0002"}) || own.ENI.ID == plain.ENI.ID {
		t.Errorf("annotated pod on %s in groups %v, want an ENI of its own in [sg-alisim0002]", own.ENI.ID, g)
	}
	r := addReq("inns")
	r.Pod.Namespace = "team"
	inns, err := e.n.Add(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if inns.ENI.ID != own.ENI.ID {
		t.Errorf("pod of the annotated Namespace on %s, want %s (the sg-alisim0002 ENI)", inns.ENI.ID, own.ENI.ID)
	}
	for name, want := range map[string]string{"bad": "pod annotation " + AnnotationSecurityGroups, "zone": "vSwitch vsw-alisim0002 is in zone cn-hangzhou-i, not in the node's zone cn-hangzhou-h"} {
		_, err := e.n.Add(ctx, addReq(name))
		var pe *cniproto.Error
		if !errors.As(err, &pe) || pe.Code != cniproto.CodeBadRequest || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want BadRequest with %q", name, err, want)
		}
		if _, ok := e.n.pool.Lookup("c-"+name, "eth0"); ok {
			t.Errorf("%s holds an address", name)
		}
	}
}
