package eni

// Fixed pod addresses (ip_reservation_ttl): a StatefulSet's pod, or a pod annotated
// k8s.aliyun.com/pod-ip-reservation: "true" (Terway's annotation), keeps its address across its deletion and
// re-creation under the same namespace and name, across weftd restarts and node reboots, for the TTL after its
// release (internal/eni/pool's reservations, kept in the checkpoint). A StatefulSet scaled down below the pod's
// ordinal, or deleted, ends its pods' reservations at the next check (every reserveCheckEvery): the pod will not
// come back, and its address returns to the pool.
//
// The decision is made from the pod object at ADD (podReservation, pure); the check asks the API for the
// StatefulSets of the reservations held (StatefulSets, one GET each, only while a reservation exists).

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

// AnnotationPodIPReservation is Terway's pod annotation asking for a fixed address: only the value "true" does.
const AnnotationPodIPReservation = "k8s.aliyun.com/pod-ip-reservation"

// reserveCheckEvery is how often the reservations of StatefulSet pods are checked against their StatefulSet.
const reserveCheckEvery = 10 * time.Second

// podReservation says whether the pod keeps its address after its release, and the StatefulSet owning it (its
// controller owner reference of kind StatefulSet in group apps, named as an object), if any. A StatefulSet's pod
// always does; another pod when annotated AnnotationPodIPReservation "true" (any other value: not).
func podReservation(p *corev1.Pod) (reserve bool, statefulSet string) {
	if p == nil {
		return false, ""
	}
	for _, o := range p.OwnerReferences {
		// An owner name that is no object name (the API does not check owner references' names) is ignored: the
		// checkpoint would refuse it, and with it the pod's ADD.
		if o.Kind == "StatefulSet" && strings.HasPrefix(o.APIVersion, "apps/") && o.Controller != nil && *o.Controller &&
			len(validation.IsDNS1123Subdomain(o.Name)) == 0 {
			return true, o.Name
		}
	}
	return p.Annotations[AnnotationPodIPReservation] == "true", ""
}

// StatefulSetState is what the reservation check needs of a StatefulSet.
type StatefulSetState struct {
	Exists   bool
	Replicas int32 // spec.replicas (1 when unset, as the API's default)
	Start    int32 // spec.ordinals.start: the first ordinal (0 when unset)
}

// StatefulSets reads StatefulSets from the API.
type StatefulSets interface {
	// Get reads the StatefulSet namespace/name; one that does not exist is Exists false and no error.
	Get(ctx context.Context, namespace, name string) (StatefulSetState, error)
}

// KubeStatefulSets implements StatefulSets with a GET (RBAC: statefulsets get in group apps).
type KubeStatefulSets struct{ Client kubernetes.Interface }

var _ StatefulSets = KubeStatefulSets{}

// Get implements StatefulSets.
func (k KubeStatefulSets) Get(ctx context.Context, namespace, name string) (StatefulSetState, error) {
	s, err := k.Client.AppsV1().StatefulSets(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return StatefulSetState{}, nil
	}
	if err != nil {
		return StatefulSetState{}, fmt.Errorf("read StatefulSet %s/%s: %w", namespace, name, err)
	}
	return statefulSetState(s), nil
}

func statefulSetState(s *appsv1.StatefulSet) StatefulSetState {
	st := StatefulSetState{Exists: true, Replicas: 1}
	if s.Spec.Replicas != nil {
		st.Replicas = *s.Spec.Replicas
	}
	if s.Spec.Ordinals != nil {
		st.Start = s.Spec.Ordinals.Start
	}
	return st
}

// reservationEnds says whether the reservation of pod podName, owned by StatefulSet sts, ends: the StatefulSet is
// gone, or no longer has the pod's ordinal (scaled down below it). A pod name that is not <sts>-<ordinal> keeps
// its reservation until its TTL (nothing says the StatefulSet dropped it).
func reservationEnds(podName, sts string, st StatefulSetState) (bool, string) {
	if !st.Exists {
		return true, fmt.Sprintf("its StatefulSet %s is gone", sts)
	}
	digits, ok := strings.CutPrefix(podName, sts+"-")
	if !ok || digits == "" || digits[0] == '+' || digits[0] == '-' {
		return false, ""
	}
	ord, err := strconv.ParseInt(digits, 10, 32)
	if err != nil {
		return false, ""
	}
	if o := int32(ord); o < st.Start || int64(o) >= int64(st.Start)+int64(st.Replicas) {
		return true, fmt.Sprintf("its StatefulSet %s has %d replicas from ordinal %d, not ordinal %d any more", sts, st.Replicas, st.Start, o)
	}
	return false, ""
}

// reserveLoop ends the reservations whose StatefulSet no longer wants the pod, and saves the reservations and
// cooldowns that ended with time, every reserveCheckEvery.
func (n *Network) reserveLoop(ctx context.Context) {
	t := time.NewTicker(reserveCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n.d.sts != nil && n.cfg.IPReservationTTL > 0 {
			n.checkReservations(ctx)
		}
		if err := n.pool.Sync(); err != nil {
			klog.Warningf("eni: %v", err)
		}
	}
}

// checkReservations asks the API once for the StatefulSet of each reservation held and ends those it no longer
// wants. A failed read ends nothing (the TTL still does).
func (n *Network) checkReservations(ctx context.Context) {
	type owner struct{ ns, name string }
	states := map[owner]*StatefulSetState{}
	done := map[[2]string]bool{}
	for _, r := range n.pool.Records() {
		if r.State != checkpoint.Reserved || r.StatefulSet == "" || done[[2]string{r.PodNamespace, r.PodName}] {
			continue
		}
		o := owner{r.PodNamespace, r.StatefulSet}
		st, ok := states[o]
		if !ok {
			s, err := n.d.sts.Get(ctx, o.ns, o.name)
			if err != nil {
				klog.V(2).Infof("eni: reservation check: %v", err)
			} else {
				st = &s
			}
			states[o] = st
		}
		if st == nil {
			continue
		}
		end, why := reservationEnds(r.PodName, r.StatefulSet, *st)
		if !end {
			continue
		}
		done[[2]string{r.PodNamespace, r.PodName}] = true
		if ended, err := n.pool.EndReservation(r.PodNamespace, r.PodName); err != nil {
			klog.Warningf("eni: end the reservation of %s/%s: %v", r.PodNamespace, r.PodName, err)
		} else {
			for _, e := range ended {
				klog.Infof("eni: %s is no longer kept for %s/%s: %s", e.IP, e.PodNamespace, e.PodName, why)
			}
		}
	}
}

// MaxIPReservationTTL bounds ip_reservation_ttl: an address kept longer for a pod that may never come back is
// an address the node's other pods go without.
const MaxIPReservationTTL = 24 * time.Hour

// parseReservationTTL reads ip_reservation_ttl: a duration string from 0 (no reservations) to
// MaxIPReservationTTL.
func parseReservationTTL(c *Config, raw json.RawMessage) error {
	expected := fmt.Sprintf(`a duration such as "5m", from "0s" (no fixed pod addresses) to %q`, MaxIPReservationTTL.String())
	s, err := cfgString("ip_reservation_ttl", raw)
	if err != nil {
		return cfgKeyErr("ip_reservation_ttl", raw, expected)
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > MaxIPReservationTTL {
		return cfgKeyErr("ip_reservation_ttl", raw, expected)
	}
	c.IPReservationTTL = d
	return nil
}
