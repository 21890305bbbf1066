package eni

// Per-pod vSwitches and security groups (Terway's PodNetworking, here by annotation).
//
// A pod asks for the vSwitches its ENI may be in and the security groups it must be in by two annotations,
// AnnotationVSwitches and AnnotationSecurityGroups, each a comma-separated list of ids; the same annotations on
// the pod's Namespace are the default of its pods (the pod's own annotation wins, key by key). What is not asked
// for is the configuration's: the node zone's Backend.vswitches, the security_group(s). The pair is the pod's ENI
// class (pool.Class): in shared mode the pod gets an address of an ENI in one of those vSwitches with exactly
// those security groups, a new ENI of the class created when none has room (within the instance's ENI limit:
// beyond it, the ADD fails with the limit error naming the class); in exclusive mode its whole ENI is of the
// class. The warm pool is kept for the default class only: a pod of another class waits for its address or ENI
// to be made, and idle addresses of other classes are released after idle_ip_reclaim_after.
//
// What a pod may ask for is bounded by the configuration, not by what the VPC has, since any pod author can write
// an annotation: a vSwitch must be one of the node zone's Backend.vswitches (one of another zone is refused
// saying so), a security group one of security_group(s) or pod_security_groups, at most MaxSecurityGroups of
// them. A malformed value is refused with an error naming the annotation (and the Namespace when it came from
// there); nothing is created for it.
//
// The default class matches any ENI of the node with exactly the configured security groups, whatever its
// vSwitch (as before classes: an ENI of a vSwitch since removed from the configuration keeps serving pods).

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/internal/eni/pool"
)

const (
	// AnnotationVSwitches lists the vSwitches a pod's ENI may be in ("vsw-a,vsw-b"), on the pod or its Namespace.
	AnnotationVSwitches = "k8s.aliyun.com/vswitches"
	// AnnotationSecurityGroups lists the security groups of a pod's ENI ("sg-a,sg-b"), on the pod or its Namespace.
	AnnotationSecurityGroups = "k8s.aliyun.com/security-groups"
	// MaxPodVSwitches bounds AnnotationVSwitches (a zone has no more configured in practice).
	MaxPodVSwitches = 16
	// maxPodNetValue bounds either annotation's length before it is parsed.
	maxPodNetValue = 1024
)

// podNetAnnotations are the annotations TrimPod keeps for the pod's class.
var podNetAnnotations = []string{AnnotationVSwitches, AnnotationSecurityGroups}

// Namespaces reads a Namespace's annotations (the default class of its pods).
type Namespaces interface {
	Annotations(ctx context.Context, name string) (map[string]string, error)
}

// KubeNamespaces implements Namespaces by a GET of the Namespace (RBAC: namespaces get).
type KubeNamespaces struct{ Client kubernetes.Interface }

// Annotations implements Namespaces.
func (k KubeNamespaces) Annotations(ctx context.Context, name string) (map[string]string, error) {
	ns, err := k.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return ns.Annotations, nil
}

// PodNetRequest is what a pod asks for: nil lists are not asked for (the configuration's).
type PodNetRequest struct {
	VSwitches, SecurityGroups []string
}

// ParsePodNet reads the pod's annotations over its Namespace's. Errors name the annotation and where it is.
func ParsePodNet(pod, namespace map[string]string) (PodNetRequest, error) {
	var r PodNetRequest
	var err error
	if r.VSwitches, err = podNetList(AnnotationVSwitches, "vsw-", MaxPodVSwitches, pod, namespace); err != nil {
		return PodNetRequest{}, err
	}
	if r.SecurityGroups, err = podNetList(AnnotationSecurityGroups, "sg-", MaxSecurityGroups, pod, namespace); err != nil {
		return PodNetRequest{}, err
	}
	return r, nil
}

func podNetList(key, prefix string, most int, pod, namespace map[string]string) ([]string, error) {
	where, v, ok := "pod annotation", pod[key], false
	if _, ok = pod[key]; !ok {
		where = "namespace annotation"
		if v, ok = namespace[key]; !ok {
			return nil, nil
		}
	}
	if len(v) > maxPodNetValue {
		return nil, fmt.Errorf("%s %s: %d characters, expected at most %d", where, key, len(v), maxPodNetValue)
	}
	var ids []string
	for _, f := range strings.Split(v, ",") {
		id := strings.TrimSpace(f)
		if !validCloudID(id, prefix) {
			return nil, fmt.Errorf("%s %s=%q: expected a comma-separated list of ids (%s...), not %q", where, key, clipValue(v), prefix, clipValue(id))
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) > most {
		return nil, fmt.Errorf("%s %s: %d ids, expected at most %d", where, key, len(ids), most)
	}
	return ids, nil
}

// PodNetPolicy is what pods may ask for on a node.
type PodNetPolicy struct {
	Zone              string
	ZoneVSwitches     []string          // Backend.vswitches of the node's zone: the ones allowed, the default
	SecurityGroups    []string          // security_group(s): the default, allowed
	PodSecurityGroups []string          // pod_security_groups: allowed beside the default ones
	KnownZones        map[string]string // vSwitch id -> zone (DescribeVSwitches), for the error of another zone's
}

// Class is the pod's class, checked against the policy; nil: the default class.
func (p PodNetPolicy) Class(r PodNetRequest) (*pool.Class, error) {
	if r.VSwitches == nil && r.SecurityGroups == nil {
		return nil, nil
	}
	for _, id := range r.VSwitches {
		if slices.Contains(p.ZoneVSwitches, id) {
			continue
		}
		if z, ok := p.KnownZones[id]; ok && z != p.Zone {
			return nil, fmt.Errorf("annotation %s: vSwitch %s is in zone %s, not in the node's zone %s", AnnotationVSwitches, id, z, p.Zone)
		}
		return nil, fmt.Errorf("annotation %s: vSwitch %s is not one of the node zone's Backend.vswitches (%s)", AnnotationVSwitches, id, strings.Join(p.ZoneVSwitches, ", "))
	}
	for _, id := range r.SecurityGroups {
		if !slices.Contains(p.SecurityGroups, id) && !slices.Contains(p.PodSecurityGroups, id) {
			return nil, fmt.Errorf("annotation %s: security group %s is not one of Backend.security_group(s) or pod_security_groups", AnnotationSecurityGroups, id)
		}
	}
	c := pool.Class{VSwitches: r.VSwitches, SecurityGroups: r.SecurityGroups}
	if c.VSwitches == nil {
		c.VSwitches = slices.Clone(p.ZoneVSwitches)
	}
	if c.SecurityGroups == nil {
		c.SecurityGroups = slices.Clone(p.SecurityGroups)
	}
	return &c, nil
}

// DefaultClass is the pool's default class: any ENI with exactly the configured security groups.
func DefaultClass(cfg Config) pool.Class {
	return pool.Class{SecurityGroups: slices.Clone(cfg.SecurityGroups)}
}

func parsePodSecurityGroupsKey(c *Config, raw json.RawMessage) error {
	var ids []string
	if err := json.Unmarshal(raw, &ids); err != nil {
		return cfgKeyErr("pod_security_groups", raw, "a list of security group ids pods may ask for")
	}
	for _, id := range ids {
		if !validCloudID(id, "sg-") {
			return cfgKeyErr("pod_security_groups", raw, fmt.Sprintf("security group ids (sg-...), not %q", clipValue(id)))
		}
	}
	c.PodSecurityGroups = dedupeStrings(ids)
	return nil
}

// podClass is the class the ADD's pod asks for (nil: the default), or a BadRequest error naming the annotation.
func (n *Network) podClass(ctx context.Context, info PodInfo) (*pool.Class, error) {
	var nsAnn map[string]string
	if n.d.namespaces != nil {
		a, err := n.d.namespaces.Annotations(ctx, info.Namespace)
		if err != nil {
			return nil, protoErr("NotReady", "read namespace %s (its %s and %s annotations): %v", info.Namespace, AnnotationVSwitches, AnnotationSecurityGroups, err)
		}
		nsAnn = a
	}
	req, err := ParsePodNet(info.NetAnnotations, nsAnn)
	if err != nil {
		return nil, protoErr("BadRequest", "pod %s/%s: %v", info.Namespace, info.Name, err)
	}
	n.mu.Lock()
	pol := PodNetPolicy{Zone: n.zone, ZoneVSwitches: n.cfg.VSwitchesFor(n.zone), SecurityGroups: n.cfg.SecurityGroups,
		PodSecurityGroups: n.cfg.PodSecurityGroups, KnownZones: map[string]string{}}
	for id, sw := range n.vswitches {
		pol.KnownZones[id] = sw.Zone
	}
	n.mu.Unlock()
	c, err := pol.Class(req)
	if err != nil {
		return nil, protoErr("BadRequest", "pod %s/%s: %v", info.Namespace, info.Name, err)
	}
	return c, nil
}

// newENIFor is the vSwitches (in selection order) and security groups of an ENI created for the class (nil:
// the default class: the zone's configured vSwitches and groups).
func (n *Network) newENIFor(c *pool.Class) (vswitches, sgs []string) {
	if c == nil {
		return n.cfg.VSwitchesFor(n.zone), n.cfg.SecurityGroups
	}
	return c.VSwitches, c.SecurityGroups
}

// poolENI is an ENI as the pool sees it.
func poolENI(e aliyun.ENI, usable bool) pool.ENI {
	return pool.ENI{ID: e.ID, MAC: e.MAC, VSwitchID: e.VSwitchID, Addrs: append([]netip.Addr{e.PrimaryIP}, e.Secondary...),
		Usable: usable, SecurityGroups: slices.Clone(e.SecurityGroupIDs), IPv6: e.IPv6}
}

// keptAnnotations is the subset of the annotations with the keys; nil when none.
func keptAnnotations(ann map[string]string, keys ...string) map[string]string {
	var out map[string]string
	for _, k := range keys {
		if v, ok := ann[k]; ok {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
