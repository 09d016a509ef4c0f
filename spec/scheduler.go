package spec

import (
	"context"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// The scheduler policy contract, modelled on the kube-scheduler framework and
// kept small: one interface per extension point, each embedding Named. A
// plugin implements the extension points it needs (and asserts them at
// compile time: var _ spec.FilterPlugin = (*MyPlugin)(nil)). How a
// profile's plugins are run is part of the contract and lives in
// spec/framework, whose Schedule is the one scheduling cycle: the reference
// scheduler (reference/scheduler), the plugins' tests and any replay run
// it. The extension points run for every pod in this order:
//
//	PreFilter → Filter (every candidate node) → [PostFilter if no node fits]
//	→ PreScore → Score + NormalizeScore (feasible nodes) → Reserve → Bind
//
// Plugins decide on a Snapshot, never on live informers, so a decision is a
// pure function of its inputs and can be replayed in tests. Expected outcomes
// ("this node does not fit") are a Status, not an error.

// MaxNodeScore is the highest score NormalizeScore may give a node (the
// kube-scheduler's framework.MaxNodeScore). The seed's older 0..10 priority
// range maps onto it by multiplying by 10.
const MaxNodeScore int64 = 100

// MinNodeScore is the lowest node score.
const MinNodeScore int64 = 0

// Code is the outcome of a plugin at one extension point.
type Code int

const (
	// Success: the plugin ran and, for Filter, the node fits.
	Success Code = iota
	// Unschedulable: the pod does not fit (this node, for Filter); a
	// PostFilter such as preemption may help.
	Unschedulable
	// UnschedulableAndUnresolvable: the pod does not fit and preempting pods
	// would not help (e.g. a node selector mismatch).
	UnschedulableAndUnresolvable
	// Skip: at PreFilter or PreScore, the plugin has nothing to do for this
	// pod; its Filter or Score is not called.
	Skip
	// Error: something went wrong that is not about the pod fitting; the pod
	// is retried with backoff.
	Error
)

// String returns the code's name.
func (c Code) String() string {
	switch c {
	case Success:
		return "Success"
	case Unschedulable:
		return "Unschedulable"
	case UnschedulableAndUnresolvable:
		return "UnschedulableAndUnresolvable"
	case Skip:
		return "Skip"
	case Error:
		return "Error"
	}
	return fmt.Sprintf("Code(%d)", int(c))
}

// Status is a plugin's verdict. A nil *Status means Success.
type Status struct {
	// Code is the outcome.
	Code Code
	// Reasons are short human-readable reasons, such as "Insufficient cpu";
	// the scheduler aggregates them across nodes into its FailedScheduling
	// message ("0/5 nodes are available: 3 Insufficient cpu.").
	Reasons []string
	// Plugin is the name of the plugin that returned the status; the
	// framework fills it in.
	Plugin string
	// Err is the cause when Code is Error.
	Err error
}

// NewStatus returns a status with the given code and reasons.
func NewStatus(code Code, reasons ...string) *Status {
	return &Status{Code: code, Reasons: reasons}
}

// AsStatus wraps an error in a Status with Code Error; nil gives nil.
func AsStatus(err error) *Status {
	if err == nil {
		return nil
	}
	return &Status{Code: Error, Reasons: []string{err.Error()}, Err: err}
}

// IsSuccess reports whether s is nil or has Code Success.
func (s *Status) IsSuccess() bool { return s == nil || s.Code == Success }

// IsSkip reports whether s has Code Skip.
func (s *Status) IsSkip() bool { return s != nil && s.Code == Skip }

// IsRejected reports whether s says the pod does not fit.
func (s *Status) IsRejected() bool {
	return s != nil && (s.Code == Unschedulable || s.Code == UnschedulableAndUnresolvable)
}

// Message joins the reasons.
func (s *Status) Message() string {
	if s == nil {
		return ""
	}
	return strings.Join(s.Reasons, ", ")
}

// NodeInfo is one node in a Snapshot: the node, the pods on it (bound or
// assumed), and what they request against what it can allocate.
type NodeInfo struct {
	// Node is the Node object; plugins must not modify it.
	Node *corev1.Node
	// Pods are the pods assigned to the node, including assumed ones.
	Pods []*corev1.Pod
	// Requested sums the effective requests of Pods (init containers and
	// overhead included, as the kube-scheduler computes them).
	Requested corev1.ResourceList
	// Allocatable is Node.Status.Allocatable.
	Allocatable corev1.ResourceList
	// UsedPorts are the host ports in use on the node, as
	// "protocol/hostIP/port" strings.
	UsedPorts map[string]bool
	// NonZeroRequested sums the cpu and memory requests of Pods the way the
	// kube-scheduler's scoring counts them: a container that requests no
	// cpu (memory) counts as 100m (200Mi), so that request-less pods still
	// spread. Only the scoring plugins use it; Filter uses Requested.
	NonZeroRequested corev1.ResourceList
	// PodsWithAffinity are the Pods with pod affinity or anti-affinity
	// terms, and PodsWithRequiredAntiAffinity those with required
	// anti-affinity terms, so that InterPodAffinity need not look at every
	// pod. NewNodeInfo, AddPod, RemovePod and Clone maintain them.
	PodsWithAffinity             []*corev1.Pod
	PodsWithRequiredAntiAffinity []*corev1.Pod
	// Counts mirrors the hot entries of Allocatable, Requested and
	// NonZeroRequested as integers, so that Filter and Score on thousands
	// of nodes need no map lookups. NewNodeInfo, AddPod, RemovePod and
	// Clone maintain it; a NodeInfo assembled by hand has Counts.Valid
	// false, and plugins then read the ResourceLists.
	Counts NodeCounts
}

// NodeCounts are a NodeInfo's cpu (millicores), memory, ephemeral-storage
// (bytes) and pod figures as integers.
type NodeCounts struct {
	// Valid is true when the spec helpers maintain these figures.
	Valid bool

	AllocatableMilliCPU         int64
	AllocatableMemory           int64
	AllocatableEphemeralStorage int64
	AllocatablePods             int64

	RequestedMilliCPU         int64
	RequestedMemory           int64
	RequestedEphemeralStorage int64

	NonZeroMilliCPU int64
	NonZeroMemory   int64
}

// Free returns allocatable minus requested for one resource; it may be
// negative for an overcommitted node.
func (n *NodeInfo) Free(name corev1.ResourceName) resource.Quantity {
	free := n.Allocatable[name].DeepCopy()
	free.Sub(n.Requested[name])
	return free
}

// Snapshot is an immutable view of the cluster taken at the start of a
// scheduling cycle.
type Snapshot interface {
	// Nodes lists every node in the snapshot.
	Nodes() []*NodeInfo
	// Get returns one node's info, or an error wrapping ErrNotFound.
	Get(nodeName string) (*NodeInfo, error)
}

// NamespaceLabeler is optionally implemented by a Snapshot that knows the
// cluster's namespaces. InterPodAffinity needs it for pod affinity terms
// with a non-empty namespaceSelector; without it such a selector matches
// no namespace (the term's namespaces list still applies).
type NamespaceLabeler interface {
	// NamespaceLabels returns the labels of namespace name and whether the
	// namespace exists.
	NamespaceLabels(name string) (map[string]string, bool)
}

// CycleState carries data between the extension points of one pod's
// scheduling cycle (for example PreFilter's pre-computation for Filter).
// It is safe for concurrent use: Filter and Score run in parallel over nodes.
type CycleState struct {
	m sync.Map
}

// Write stores a value under key.
func (c *CycleState) Write(key string, v any) { c.m.Store(key, v) }

// Read returns the value under key, or an error wrapping ErrNotFound.
func (c *CycleState) Read(key string) (any, error) {
	v, ok := c.m.Load(key)
	if !ok {
		return nil, fmt.Errorf("cycle state key %q: %w", key, ErrNotFound)
	}
	return v, nil
}

// Named is embedded by every extension point.
type Named interface {
	// Name is the plugin's name as registered.
	Name() string
}

// PreFilterPlugin runs once per pod before filtering. Returning Skip skips
// the plugin's Filter for this pod; a rejection makes the pod unschedulable
// without looking at nodes.
type PreFilterPlugin interface {
	Named
	PreFilter(ctx context.Context, state *CycleState, pod *corev1.Pod, snap Snapshot) *Status
}

// FilterPlugin says whether pod fits on one node. It is called concurrently
// for different nodes.
type FilterPlugin interface {
	Named
	Filter(ctx context.Context, state *CycleState, pod *corev1.Pod, node *NodeInfo) *Status
}

// PostFilterPlugin runs when no node passed Filter (e.g. preemption). It
// may return a node name to nominate, after making room there.
type PostFilterPlugin interface {
	Named
	PostFilter(ctx context.Context, state *CycleState, pod *corev1.Pod, snap Snapshot, filtered map[string]*Status) (nominatedNode string, status *Status)
}

// PreScorePlugin runs once per pod before scoring the feasible nodes.
type PreScorePlugin interface {
	Named
	PreScore(ctx context.Context, state *CycleState, pod *corev1.Pod, nodes []*NodeInfo) *Status
}

// NodeScore is one node's score from one plugin.
type NodeScore struct {
	Name  string
	Score int64
}

// ScorePlugin ranks one feasible node. Raw scores may be on any scale if
// NormalizeScore maps them to MinNodeScore..MaxNodeScore; otherwise they
// must already be in that range. The framework multiplies each plugin's
// normalized score by the plugin's weight in the profile and sums them.
type ScorePlugin interface {
	Named
	Score(ctx context.Context, state *CycleState, pod *corev1.Pod, node *NodeInfo) (int64, *Status)
	// NormalizeScore rewrites scores in place into 0..MaxNodeScore; a plugin
	// whose scores are already in range returns nil without changes.
	NormalizeScore(ctx context.Context, state *CycleState, pod *corev1.Pod, scores []NodeScore) *Status
}

// ReservePlugin is told when a node is chosen (Reserve), before binding, and
// when that choice is abandoned (Unreserve, also after a failed Bind).
// Unreserve must be idempotent.
type ReservePlugin interface {
	Named
	Reserve(ctx context.Context, state *CycleState, pod *corev1.Pod, nodeName string) *Status
	Unreserve(ctx context.Context, state *CycleState, pod *corev1.Pod, nodeName string)
}

// BindPlugin binds a pod to a node (through the API's pods/binding). A Bind
// returning Skip passes the pod to the next bind plugin.
type BindPlugin interface {
	Named
	Bind(ctx context.Context, state *CycleState, pod *corev1.Pod, nodeName string) *Status
}

// QueueSortPlugin orders the scheduling queue.
type QueueSortPlugin interface {
	Named
	Less(a, b *corev1.Pod) bool
}

// SchedulerHandle is what a plugin may use from the scheduler that runs it.
type SchedulerHandle interface {
	// Snapshot returns the current cycle's snapshot.
	Snapshot() Snapshot
	// PodDisruptionBudgets returns the cluster's PodDisruptionBudgets as
	// the scheduler listed them for the PostFilter in progress, for
	// preemption to prefer victims whose eviction violates none (outside
	// PostFilter it may return nil; a scheduler that cannot list them does
	// not run PostFilter). Plugins must not modify them.
	PodDisruptionBudgets() []*policyv1.PodDisruptionBudget
	// Preempt makes room for preemptor on nodeName: it deletes each victim
	// through the API (after marking it with a DisruptionTarget condition,
	// as the kube-scheduler does) and sets the preemptor's
	// status.nominatedNodeName. It returns the first error met.
	Preempt(ctx context.Context, preemptor *corev1.Pod, nodeName string, victims []*corev1.Pod) error
	// Bind binds pod to nodeName by creating a Binding through the API's
	// pods/binding subresource. DefaultBinder is a BindPlugin over it.
	Bind(ctx context.Context, pod *corev1.Pod, nodeName string) error
	// RunFilterPlugins runs the profile's PreFilter and Filter plugins for
	// pod against node nodeName of snap, with a fresh CycleState, and
	// returns the first rejection (nil when the node fits). Preemption
	// calls it on a snapshot from which it removed the candidate victims.
	RunFilterPlugins(ctx context.Context, pod *corev1.Pod, snap Snapshot, nodeName string) *Status
}

// SchedulerPluginFactory builds a policy plugin. args are the plugin's
// settings from the profile (may be nil); the returned value implements one
// or more extension-point interfaces.
type SchedulerPluginFactory func(args map[string]string, h SchedulerHandle) (Named, error)

// WeightedPlugin is one plugin in a Profile.
type WeightedPlugin struct {
	// Name is the plugin's registry name.
	Name string
	// Weight multiplies the plugin's normalized score (default 1).
	Weight int64
	// Args are the plugin's settings.
	Args map[string]string
}

// Profile is a scheduler name plus the plugins that decide for pods that ask
// for it with spec.schedulerName.
type Profile struct {
	// SchedulerName is matched against pod.spec.schedulerName.
	SchedulerName string
	// Plugins run in list order at each extension point they implement.
	Plugins []WeightedPlugin
	// PercentageOfNodesToScore bounds how many feasible nodes are searched
	// for, as the kube-scheduler does; 0 means its adaptive default.
	PercentageOfNodesToScore int32
}
