package eni

// The Kubernetes side of the eni backend, each part behind a small interface the agent uses:
//
//   - NodeStatus: the node's NetworkUnavailable condition (False with reason WeftENIReady once an address can be
//     served, True with the reason otherwise) and its pod capacity, as the annotation Terway publishes
//     (k8s.aliyun.com/max-available-ip) and under weft's own name (weft.io/eni-max-pods). Both go through
//     nodes/status, as flannel's kube subnet manager writes its annotations, so the DaemonSet needs no write
//     access to nodes themselves; and only when something changed.
//   - Events: corev1 Events on the Node, deduplicated and rate-limited before client-go's own spam filter, so
//     that a state held for hours does not emit an event per second.
//   - Pods: the pods of this node (one informer, field selector spec.nodeName), trimmed to what GC and the
//     address reservation need.
//   - StatefulSets (reserve.go): a GET of the StatefulSet of each address reservation held, for its scale-down.
//   - Nodes: every node's existence, cordon and deletion, for the ENI GC (one informer, trimmed).
//
// The RBAC these need, and no more (kube_test.go runs them with exactly these rules against a real API server):
//
//	pods:         get, list, watch
//	statefulsets: get             (group apps)
//	nodes:        get, list, watch
//	nodes/status: patch
//	events:       create, patch   (core API group; patch: client-go aggregates repeats into one Event's count)

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/weftnet/weft/internal/eni/reconcile"
)

// PodKey names a pod (reconcile's, whose GC decisions take these).
type PodKey = reconcile.PodKey

// NodeState is what the ENI GC needs of a node (reconcile's).
type NodeState = reconcile.NodeState

// The node status weft's eni backend publishes.
const (
	// ReasonReady is the reason of NetworkUnavailable=False: an address can be served to a pod.
	ReasonReady = "WeftENIReady"
	// ReasonNotReady is the reason of NetworkUnavailable=True when the caller gives none.
	ReasonNotReady = "WeftENINotReady"
	// ConditionExhausted is the node condition that says the node cannot get more pod addresses from the cloud
	// (all its zone's vSwitches are out of addresses, or the instance refuses another ENI); it is not
	// NetworkUnavailable, since the pods the node has keep working.
	ConditionExhausted corev1.NodeConditionType = "WeftENIExhausted"
	// ReasonAddressesAvailable is ConditionExhausted's reason when False.
	ReasonAddressesAvailable = "AddressesAvailable"
	// AnnotationMaxAvailableIP is Terway's annotation of a node's shared-ENI pod capacity.
	AnnotationMaxAvailableIP = "k8s.aliyun.com/max-available-ip"
	// AnnotationMaxPods is the same figure under weft's own name.
	AnnotationMaxPods = "weft.io/eni-max-pods"
	// eniConditionPrefix starts the message of every condition weft writes, telling it from another writer's.
	eniConditionPrefix = "weft: "
)

// NodeStatus publishes the node's readiness and capacity.
type NodeStatus interface {
	// SetNetworkReady sets NetworkUnavailable: False (reason ReasonReady unless reason is given) when ready,
	// True with reason (ReasonNotReady when "") otherwise. Nothing is written when the node already says so.
	SetNetworkReady(ctx context.Context, ready bool, reason, message string) error
	// SetExhausted sets the ConditionExhausted condition: True with the reason (VSwitchExhausted,
	// ENILimitExceeded) while the node cannot get more addresses from the cloud, False otherwise.
	SetExhausted(ctx context.Context, exhausted bool, reason, message string) error
	// SetCapacity publishes how many pods the node's ENIs can hold (AnnotationMaxAvailableIP and
	// AnnotationMaxPods). Nothing is written when the node already says so.
	SetCapacity(ctx context.Context, pods int) error
}

// Events records Events on the node. kind is corev1.EventTypeNormal or corev1.EventTypeWarning.
type Events interface {
	Eventf(kind, reason, format string, args ...any)
}

// PodInfo is what the backend keeps of a pod.
type PodInfo struct {
	Namespace, Name string
	UID             types.UID
	Phase           corev1.PodPhase
	HostNetwork     bool
	Deleting        bool // deletionTimestamp set
	// Reserve: the pod keeps its address after its release (podReservation); StatefulSet: its owner, if any.
	Reserve     bool
	StatefulSet string
	// NetAnnotations: the pod's AnnotationVSwitches and AnnotationSecurityGroups, those it has (podnet.go).
	NetAnnotations map[string]string
}

// Pods are the pods of this node, from the API.
type Pods interface {
	// Live is the set of pods that may hold an address: neither host network nor terminated (Succeeded,
	// Failed). A pod being deleted is still live until it is gone. nil (not an empty map) until Synced.
	Live() map[PodKey]bool
	Get(namespace, name string) (PodInfo, bool)
	// Synced reports that the first list has arrived: before that, an absent pod proves nothing.
	Synced() bool
}

// Nodes are every node's states, for the ENI GC. A node absent from States no longer exists.
//
// Synced is added to the design's interface: before the first list every node would read as absent, and
// their ENIs as deletable.
type Nodes interface {
	States() map[string]NodeState // nil until Synced
	Synced() bool
}

// KubeNodeStatus implements NodeStatus on the Node named Node, through nodes/status patches. It remembers what
// the node says (read once, then from each patch's answer) and writes only a difference; every Resync it reads the
// node again, so that a condition or annotation someone else overwrote is repaired.
type KubeNodeStatus struct {
	Client kubernetes.Interface
	Node   string
	Resync time.Duration    // 0: 10 minutes
	Now    func() time.Time // nil: time.Now

	mu     sync.Mutex
	known  bool // cond and ann hold what the node said at readAt
	readAt time.Time
	conds  map[corev1.NodeConditionType]*corev1.NodeCondition // the node's conditions weft writes
	ann    map[string]string                                  // the node's two capacity annotations
}

var _ NodeStatus = (*KubeNodeStatus)(nil)

// NewNodeStatus is a KubeNodeStatus of node.
func NewNodeStatus(client kubernetes.Interface, node string) *KubeNodeStatus {
	return &KubeNodeStatus{Client: client, Node: node}
}

func (s *KubeNodeStatus) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// refresh reads the node when what is remembered is missing or older than Resync. Called with mu held.
func (s *KubeNodeStatus) refresh(ctx context.Context) error {
	resync := s.Resync
	if resync <= 0 {
		resync = 10 * time.Minute
	}
	if s.known && s.now().Sub(s.readAt) < resync {
		return nil
	}
	n, err := s.Client.CoreV1().Nodes().Get(ctx, s.Node, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read node %q: %w", s.Node, err)
	}
	s.remember(n)
	return nil
}

// remember takes what the node says. Called with mu held.
func (s *KubeNodeStatus) remember(n *corev1.Node) {
	s.known, s.readAt, s.conds = true, s.now(), map[corev1.NodeConditionType]*corev1.NodeCondition{}
	for i, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable || c.Type == ConditionExhausted {
			s.conds[c.Type] = n.Status.Conditions[i].DeepCopy()
		}
	}
	s.ann = map[string]string{}
	for _, k := range []string{AnnotationMaxAvailableIP, AnnotationMaxPods} {
		if v, ok := n.Annotations[k]; ok {
			s.ann[k] = v
		}
	}
}

// patch sends a strategic merge patch to nodes/status and remembers the node it returns; after a failure the
// node is read again before the next decision.
func (s *KubeNodeStatus) patch(ctx context.Context, what string, body map[string]any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	n, err := s.Client.CoreV1().Nodes().PatchStatus(ctx, s.Node, b)
	if err != nil {
		s.known = false
		return fmt.Errorf("set %s on node %q: %w", what, s.Node, err)
	}
	s.remember(n)
	return nil
}

// eniNetworkCondition is the NetworkUnavailable condition SetNetworkReady wants (times not set).
func eniNetworkCondition(ready bool, reason, message string) corev1.NodeCondition {
	c := corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue, Reason: reason}
	switch {
	case ready:
		c.Status = corev1.ConditionFalse
		if c.Reason == "" {
			c.Reason = ReasonReady
		}
	case c.Reason == "":
		c.Reason = ReasonNotReady
	}
	if message == "" {
		message = "pods on this node can get an address from its ENIs"
		if !ready {
			message = "no address can be served to a pod on this node"
		}
	}
	if !strings.HasPrefix(message, eniConditionPrefix) {
		message = eniConditionPrefix + message
	}
	c.Message = message
	return c
}

// SetNetworkReady implements NodeStatus.
func (s *KubeNodeStatus) SetNetworkReady(ctx context.Context, ready bool, reason, message string) error {
	return s.setCondition(ctx, eniNetworkCondition(ready, reason, message))
}

// SetExhausted implements NodeStatus.
func (s *KubeNodeStatus) SetExhausted(ctx context.Context, exhausted bool, reason, message string) error {
	c := corev1.NodeCondition{Type: ConditionExhausted, Status: corev1.ConditionFalse, Reason: ReasonAddressesAvailable,
		Message: "the node can get more pod addresses"}
	if exhausted {
		c.Status, c.Reason, c.Message = corev1.ConditionTrue, reason, message
	}
	if !strings.HasPrefix(c.Message, eniConditionPrefix) {
		c.Message = eniConditionPrefix + c.Message
	}
	return s.setCondition(ctx, c)
}

// setCondition writes one condition when it differs from what the node says.
func (s *KubeNodeStatus) setCondition(ctx context.Context, want corev1.NodeCondition) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refresh(ctx); err != nil {
		return err
	}
	cur := s.conds[want.Type]
	if c := cur; c != nil && c.Status == want.Status && c.Reason == want.Reason && c.Message == want.Message {
		return nil
	}
	now := metav1.NewTime(s.now()).Rfc3339Copy()
	cond := map[string]any{"type": want.Type, "status": want.Status, "reason": want.Reason, "message": want.Message,
		"lastHeartbeatTime": now}
	if cur == nil || cur.Status != want.Status {
		cond["lastTransitionTime"] = now // kept as it was when only the reason or message changes
	}
	return s.patch(ctx, string(want.Type)+"="+string(want.Status),
		map[string]any{"status": map[string]any{"conditions": []any{cond}}})
}

// SetCapacity implements NodeStatus.
func (s *KubeNodeStatus) SetCapacity(ctx context.Context, pods int) error {
	if pods < 0 {
		return fmt.Errorf("node capacity %d: expected a number of pods >= 0", pods)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refresh(ctx); err != nil {
		return err
	}
	v := strconv.Itoa(pods)
	if s.ann[AnnotationMaxAvailableIP] == v && s.ann[AnnotationMaxPods] == v {
		return nil
	}
	return s.patch(ctx, "capacity annotations",
		map[string]any{"metadata": map[string]any{"annotations": map[string]string{AnnotationMaxAvailableIP: v, AnnotationMaxPods: v}}})
}

// Event deduplication.
const (
	// DefaultEventRepeat is how long an identical Event (kind, reason and message) is not emitted again.
	DefaultEventRepeat = 10 * time.Minute
	// DefaultEventSpacing is the least time between two Events of one reason, whatever their messages.
	DefaultEventSpacing = 10 * time.Second
)

// KubeEvents implements Events on the Node: Events go through client-go's EventBroadcaster (which aggregates and
// spam-filters on its own), after a filter of its own: an identical Event is not emitted again within Repeat, and
// one reason at most once per Spacing. Their involved object is the node with UID = its name, as the kubelet's
// (which is what `kubectl describe node` looks for).
type KubeEvents struct {
	Repeat  time.Duration    // 0: DefaultEventRepeat
	Spacing time.Duration    // 0: DefaultEventSpacing
	Now     func() time.Time // nil: time.Now

	rec  record.EventRecorder
	ref  *corev1.ObjectReference
	stop func()

	mu       sync.Mutex
	sent     map[string]time.Time // kind/reason/message -> last emitted
	byReason map[string]time.Time // reason -> last emitted
}

var _ Events = (*KubeEvents)(nil)

// NewEvents records Events on node through client, source component weftd. Close stops it.
func NewEvents(client kubernetes.Interface, node string) *KubeEvents {
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	rec := b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "weftd", Host: node})
	return newEvents(rec, node, b.Shutdown)
}

func newEvents(rec record.EventRecorder, node string, stop func()) *KubeEvents {
	return &KubeEvents{rec: rec, stop: stop, sent: map[string]time.Time{}, byReason: map[string]time.Time{},
		ref: &corev1.ObjectReference{Kind: "Node", APIVersion: "v1", Name: node, UID: types.UID(node)}}
}

// Eventf implements Events.
func (e *KubeEvents) Eventf(kind, reason, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !e.admit(kind, reason, msg) {
		return
	}
	e.rec.Event(e.ref, kind, reason, msg)
}

// admit decides whether an Event is emitted now, and remembers it if so.
func (e *KubeEvents) admit(kind, reason, msg string) bool {
	repeat, spacing := e.Repeat, e.Spacing
	if repeat <= 0 {
		repeat = DefaultEventRepeat
	}
	if spacing <= 0 {
		spacing = DefaultEventSpacing
	}
	now := time.Now()
	if e.Now != nil {
		now = e.Now()
	}
	key := kind + "\x00" + reason + "\x00" + msg
	e.mu.Lock()
	defer e.mu.Unlock()
	if t, ok := e.sent[key]; ok && now.Sub(t) < repeat {
		return false
	}
	if t, ok := e.byReason[reason]; ok && now.Sub(t) < spacing {
		return false
	}
	for k, t := range e.sent { // bounded: entries older than repeat decide nothing
		if now.Sub(t) >= repeat {
			delete(e.sent, k)
		}
	}
	for r, t := range e.byReason {
		if now.Sub(t) >= spacing {
			delete(e.byReason, r)
		}
	}
	e.sent[key], e.byReason[reason] = now, now
	return true
}

// Close stops the broadcaster (Events queued may be dropped).
func (e *KubeEvents) Close() {
	if e.stop != nil {
		e.stop()
	}
}

// KubePods implements Pods with one informer on the pods whose spec.nodeName is the node, each trimmed to what
// PodInfo holds (TrimPod) before it is cached.
type KubePods struct {
	factory  informers.SharedInformerFactory
	informer cache.SharedIndexInformer
}

var _ Pods = (*KubePods)(nil)

// NewPods watches the pods of node once Start is called.
func NewPods(client kubernetes.Interface, node string) *KubePods {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", node).String()
		}),
		informers.WithTransform(TrimPod))
	return &KubePods{factory: f, informer: f.Core().V1().Pods().Informer()}
}

// Start runs the informer until ctx ends.
func (p *KubePods) Start(ctx context.Context) { p.factory.Start(ctx.Done()) }

// WaitForSync waits until Synced or ctx ends (its error then).
func (p *KubePods) WaitForSync(ctx context.Context) error {
	return waitInformerSynced(ctx, p.informer, "pod")
}

// Synced implements Pods.
func (p *KubePods) Synced() bool { return p.informer.HasSynced() }

// Live implements Pods.
func (p *KubePods) Live() map[PodKey]bool {
	if !p.Synced() {
		return nil
	}
	live := map[PodKey]bool{}
	for _, obj := range p.informer.GetStore().List() {
		if pod, ok := obj.(*corev1.Pod); ok && isLivePod(pod) {
			live[PodKey{Namespace: pod.Namespace, Name: pod.Name}] = true
		}
	}
	return live
}

// isLivePod: a pod that may hold an address from the pool.
func isLivePod(p *corev1.Pod) bool {
	return !p.Spec.HostNetwork && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// Get implements Pods.
func (p *KubePods) Get(namespace, name string) (PodInfo, bool) {
	obj, ok, err := p.informer.GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return PodInfo{}, false
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return PodInfo{}, false
	}
	return podInfo(pod), true
}

func podInfo(pod *corev1.Pod) PodInfo {
	reserve, sts := podReservation(pod)
	return PodInfo{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, Phase: pod.Status.Phase,
		HostNetwork: pod.Spec.HostNetwork, Deleting: pod.DeletionTimestamp != nil, Reserve: reserve, StatefulSet: sts,
		NetAnnotations: keptAnnotations(pod.Annotations, podNetAnnotations...)}
}

// TrimPod is the pod informer's cache transform: a Pod keeps its namespace, name, uid, resourceVersion,
// deletionTimestamp, spec.nodeName, spec.hostNetwork and status.phase, and what podReservation reads (its
// StatefulSet owner reference, the AnnotationPodIPReservation annotation), nothing else (no containers, labels,
// other annotations or owners, managed fields). Anything else passes unchanged (e.g. cache.DeletedFinalStateUnknown).
// Idempotent, as a TransformFunc must be.
func TrimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	var owners []metav1.OwnerReference
	for _, o := range p.OwnerReferences {
		if o.Kind == "StatefulSet" {
			owners = append(owners, o)
		}
	}
	ann := keptAnnotations(p.Annotations, append([]string{AnnotationPodIPReservation}, podNetAnnotations...)...)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, UID: p.UID, ResourceVersion: p.ResourceVersion,
			DeletionTimestamp: p.DeletionTimestamp, OwnerReferences: owners, Annotations: ann},
		Spec:   corev1.PodSpec{NodeName: p.Spec.NodeName, HostNetwork: p.Spec.HostNetwork},
		Status: corev1.PodStatus{Phase: p.Status.Phase},
	}, nil
}

// KubeNodes implements Nodes with one informer on all nodes, each trimmed (TrimNode).
type KubeNodes struct {
	factory  informers.SharedInformerFactory
	informer cache.SharedIndexInformer
}

var _ Nodes = (*KubeNodes)(nil)

// NewNodes watches the nodes once Start is called.
func NewNodes(client kubernetes.Interface) *KubeNodes {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(TrimNode))
	return &KubeNodes{factory: f, informer: f.Core().V1().Nodes().Informer()}
}

// Start runs the informer until ctx ends.
func (n *KubeNodes) Start(ctx context.Context) { n.factory.Start(ctx.Done()) }

// WaitForSync waits until Synced or ctx ends (its error then).
func (n *KubeNodes) WaitForSync(ctx context.Context) error {
	return waitInformerSynced(ctx, n.informer, "node")
}

// Synced implements Nodes.
func (n *KubeNodes) Synced() bool { return n.informer.HasSynced() }

// States implements Nodes.
func (n *KubeNodes) States() map[string]NodeState {
	if !n.Synced() {
		return nil
	}
	states := map[string]NodeState{}
	for _, obj := range n.informer.GetStore().List() {
		if node, ok := obj.(*corev1.Node); ok {
			states[node.Name] = NodeState{Exists: true, Unschedulable: node.Spec.Unschedulable, Deleting: node.DeletionTimestamp != nil}
		}
	}
	return states
}

// TrimNode is the node informer's cache transform: a Node keeps its name, uid, resourceVersion,
// deletionTimestamp and spec.unschedulable, nothing else. Anything else passes unchanged. Idempotent.
func TrimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion, DeletionTimestamp: n.DeletionTimestamp},
		Spec:       corev1.NodeSpec{Unschedulable: n.Spec.Unschedulable},
	}, nil
}

func waitInformerSynced(ctx context.Context, inf cache.SharedIndexInformer, what string) error {
	if cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil
	}
	return fmt.Errorf("%s informer not synced (is the API server reachable, may this node list and watch %ss?): %w", what, what, ctx.Err())
}
