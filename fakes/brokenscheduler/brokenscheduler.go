// Package brokenscheduler holds deliberately broken scheduler profiles:
// kubelab's default profile with one plugin replaced by a broken one (or
// left out), each with the capability of the scheduler suite
// (conformance/scheduler) that must catch it. A suite that passes one of
// them is a broken suite.
//
// Their scheduler names and plugin names start with "broken-", so nothing
// runs them by default; the kubelab binary registers them:
//
//	kubelab conform --suite scheduler --scheduler broken-overcommits-memory
package brokenscheduler

import (
	"context"
	"math"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubelab/kubelab/plugins/scheduler/defaultpreemption"
	"github.com/kubelab/kubelab/plugins/scheduler/interpodaffinity"
	"github.com/kubelab/kubelab/plugins/scheduler/nodeaffinity"
	"github.com/kubelab/kubelab/plugins/scheduler/nodeports"
	"github.com/kubelab/kubelab/plugins/scheduler/noderesources"
	"github.com/kubelab/kubelab/plugins/scheduler/nodeunschedulable"
	"github.com/kubelab/kubelab/plugins/scheduler/podtopologyspread"
	"github.com/kubelab/kubelab/plugins/scheduler/profiles"
	"github.com/kubelab/kubelab/plugins/scheduler/tainttoleration"
	"github.com/kubelab/kubelab/spec"
)

// The extension points each broken plugin implements (or overrides), checked
// at compile time as the reference plugins do.
var (
	_ spec.PreFilterPlugin  = (*fitIgnoresMemory)(nil)
	_ spec.FilterPlugin     = (*fitIgnoresMemory)(nil)
	_ spec.FilterPlugin     = (*taintsNoExecute)(nil)
	_ spec.PreFilterPlugin  = (*neverRequeue)(nil)
	_ spec.PostFilterPlugin = (*neverRequeue)(nil)
	_ spec.PostFilterPlugin = (*preemptsAnyPriority)(nil)
	_ spec.PreFilterPlugin  = (*fitOn)(nil)
	_ spec.FilterPlugin     = (*fitOn)(nil)
	_ spec.FilterPlugin     = (*affinityANDsTerms)(nil)
	_ spec.FilterPlugin     = (*tolerationNarrow)(nil)
	_ spec.PreFilterPlugin  = spreadAnywayHard{}
	_ spec.FilterPlugin     = spreadAnywayHard{}
	_ spec.PreFilterPlugin  = affinityHostname{}
)

// Capabilities of the scheduler suite, spelled here so that this package
// does not import the suite.
const (
	capResources         spec.Capability = "scheduler:resources"
	capTaints            spec.Capability = "scheduler:taints"
	capUnschedulableNode spec.Capability = "scheduler:unschedulable-node"
	capRequeue           spec.Capability = "scheduler:requeue"
	capPriority          spec.Capability = "scheduler:priority"
	capPreemption        spec.Capability = "scheduler:preemption"
	capNodeAffinity      spec.Capability = "scheduler:node-affinity"
	capHostPorts         spec.Capability = "scheduler:host-ports"
	capTopologySpread    spec.Capability = "scheduler:topology-spread"
	capPodAffinity       spec.Capability = "scheduler:pod-affinity"
	capPodAntiAffinity   spec.Capability = "scheduler:pod-anti-affinity"
)

// Names of the broken schedulers (their profiles' scheduler names).
const (
	// OvercommitsMemory: NodeResourcesFit that does not count the incoming
	// pod's memory. Caught by scheduler:resources.
	OvercommitsMemory = "broken-overcommits-memory"
	// IgnoresNoScheduleTaints: TaintToleration that only honours NoExecute
	// taints. Caught by scheduler:taints.
	IgnoresNoScheduleTaints = "broken-ignores-noschedule-taints"
	// BindsToUnschedulableNodes: the default profile without
	// NodeUnschedulable. Caught by scheduler:unschedulable-node (also
	// fails scheduler:requeue and scheduler:priority, whose specs hold
	// pods back with a cordoned node).
	BindsToUnschedulableNodes = "broken-binds-to-unschedulable-nodes"
	// NeverRequeues: once a pod fitted nowhere (and preemption did not
	// help), it is rejected for good. Caught by scheduler:requeue (also
	// fails scheduler:priority, whose pods wait for room, and may fail
	// scheduler:preemption, whose preemptor is retried after its victims
	// leave).
	NeverRequeues = "broken-never-requeues"
	// PreemptsHigherPriority: DefaultPreemption that, for a pod of
	// positive priority, takes every other pod for a lower-priority one.
	// Caught by scheduler:preemption (also fails scheduler:priority, whose
	// pending low-priority pods then evict the high-priority ones).
	PreemptsHigherPriority = "broken-preempts-higher-priority"
	// IgnoresIncomingInit: NodeResourcesFit that counts only the app
	// containers (and overhead) of the pod it places, though it counts the
	// init containers of pods already on a node. Caught by
	// scheduler:resources.
	IgnoresIncomingInit = "broken-ignores-incoming-init"
	// SidecarAsInit: NodeResourcesFit that takes sidecars (init containers
	// with restartPolicy Always) for plain init containers, so they do not
	// add to the app containers. Caught by scheduler:resources.
	SidecarAsInit = "broken-sidecar-as-init"
	// ANDsAffinityTerms: NodeAffinity that requires every nodeSelectorTerm
	// to match instead of any. Caught by scheduler:node-affinity.
	ANDsAffinityTerms = "broken-ands-affinity-terms"
	// PreemptionIgnoresPDBs: DefaultPreemption that sees no
	// PodDisruptionBudget. Caught by scheduler:preemption.
	PreemptionIgnoresPDBs = "broken-preemption-ignores-pdbs"
	// EmptyKeyTolerationNarrow: TaintToleration where a toleration with
	// an empty key and operator Exists tolerates only taints with an empty
	// key, not every taint. Caught by scheduler:taints.
	EmptyKeyTolerationNarrow = "broken-empty-key-toleration-narrow"
	// HostPortLiteralIP: NodePorts that compares host IPs literally, so
	// 0.0.0.0 (or an unset host IP) conflicts only with 0.0.0.0. Caught by
	// scheduler:host-ports.
	HostPortLiteralIP = "broken-hostport-literal-ip"
	// SpreadAnywayAsHard: PodTopologySpread that filters on ScheduleAnyway
	// constraints as on DoNotSchedule ones. Caught by
	// scheduler:topology-spread.
	SpreadAnywayAsHard = "broken-spread-anyway-as-hard"
	// IgnoresIncomingOverhead: NodeResourcesFit that does not count the
	// overhead of the pod it places (it does count that of pods already on
	// a node). Caught by scheduler:resources.
	IgnoresIncomingOverhead = "broken-ignores-incoming-overhead"
	// TopologyKeyAsHostname: InterPodAffinity that takes the incoming
	// pod's required (anti-)affinity terms per node, whatever their
	// topologyKey. Caught by scheduler:pod-affinity (also fails
	// scheduler:pod-anti-affinity).
	TopologyKeyAsHostname = "broken-topology-key-as-hostname"
)

// Broken is a broken scheduler: a profile, the plugins it needs beyond
// kubelab's, and the capabilities of the scheduler suite that catch it.
type Broken struct {
	// Profile is the broken profile; its SchedulerName is the scheduler's
	// name.
	Profile spec.Profile
	// CaughtBy is the capability whose specs target the bug: at least one
	// of them must fail.
	CaughtBy spec.Capability
	// AlsoFails are other capabilities whose specs may fail too, because
	// the bug shows through them as well. Specs of any other capability
	// must pass.
	AlsoFails []spec.Capability
}

// Plugin names of the broken plugins.
const (
	fitIgnoresMemoryName    = "broken-NodeResourcesFit-ignores-memory"
	taintsNoExecuteName     = "broken-TaintToleration-noexecute-only"
	neverRequeueName        = "broken-NeverRequeue"
	preemptsAnyPriorityName = "broken-DefaultPreemption-any-priority"
	fitIncomingInitName     = "broken-NodeResourcesFit-ignores-incoming-init"
	fitSidecarAsInitName    = "broken-NodeResourcesFit-sidecar-as-init"
	affinityANDsTermsName   = "broken-NodeAffinity-ands-terms"
	preemptionNoPDBsName    = "broken-DefaultPreemption-ignores-pdbs"
	tolerationNarrowName    = "broken-TaintToleration-empty-key-narrow"
	portsLiteralIPName      = "broken-NodePorts-literal-ip"
	spreadAnywayHardName    = "broken-PodTopologySpread-anyway-as-hard"
	fitIncomingOverheadName = "broken-NodeResourcesFit-ignores-incoming-overhead"
	affinityHostnameName    = "broken-InterPodAffinity-hostname-only"
)

// Plugins returns the broken plugins, for a registry.
func Plugins() []spec.SchedulerPlugin {
	return []spec.SchedulerPlugin{
		{Name: fitIgnoresMemoryName, Description: "broken NodeResourcesFit: ignores the incoming pod's memory", New: newFitIgnoresMemory},
		{Name: taintsNoExecuteName, Description: "broken TaintToleration: ignores NoSchedule taints", New: newTaintsNoExecute},
		{Name: neverRequeueName, Description: "broken: rejects for good a pod that once fitted nowhere", New: newNeverRequeue},
		{Name: preemptsAnyPriorityName, Description: "broken DefaultPreemption: victims of any priority", New: newPreemptsAnyPriority},
		{Name: fitIncomingInitName, Description: "broken NodeResourcesFit: ignores the incoming pod's init containers",
			New: newFitOn(fitIncomingInitName, withoutInit)},
		{Name: fitSidecarAsInitName, Description: "broken NodeResourcesFit: counts sidecars as plain init containers",
			New: newFitOn(fitSidecarAsInitName, sidecarsAsInit)},
		{Name: affinityANDsTermsName, Description: "broken NodeAffinity: ANDs nodeSelectorTerms", New: newAffinityANDsTerms},
		{Name: preemptionNoPDBsName, Description: "broken DefaultPreemption: ignores PodDisruptionBudgets", New: newPreemptionIgnoresPDBs},
		{Name: tolerationNarrowName, Description: "broken TaintToleration: an empty key with Exists does not tolerate every taint", New: newTolerationNarrow},
		{Name: spreadAnywayHardName, Description: "broken PodTopologySpread: ScheduleAnyway filters like DoNotSchedule", New: newSpreadAnywayHard},
		{Name: fitIncomingOverheadName, Description: "broken NodeResourcesFit: ignores the incoming pod's overhead",
			New: newFitOn(fitIncomingOverheadName, withoutOverhead)},
		{Name: affinityHostnameName, Description: "broken InterPodAffinity: the incoming pod's terms are per node, whatever their topologyKey", New: newAffinityHostname},
		{Name: portsLiteralIPName, Description: "broken NodePorts: host IPs compared literally, 0.0.0.0 is no wildcard", New: newPortsLiteralIP},
	}
}

// replace returns the default profile named name, with plugin old
// replaced by plugin new (in place) or, when new is "", left out.
func replace(name, old, new string) spec.Profile {
	p := profiles.Default()
	p.SchedulerName = name
	i := slices.IndexFunc(p.Plugins, func(w spec.WeightedPlugin) bool { return w.Name == old })
	if new == "" {
		p.Plugins = slices.Delete(p.Plugins, i, i+1)
	} else {
		p.Plugins[i] = spec.WeightedPlugin{Name: new, Weight: p.Plugins[i].Weight}
	}
	return p
}

// Catalog returns every broken scheduler.
func Catalog() []Broken {
	neverRequeue := profiles.Default()
	neverRequeue.SchedulerName = NeverRequeues
	neverRequeue.Plugins = append(neverRequeue.Plugins, spec.WeightedPlugin{Name: neverRequeueName})
	return []Broken{
		{Profile: replace(OvercommitsMemory, noderesources.FitName, fitIgnoresMemoryName), CaughtBy: capResources},
		{Profile: replace(IgnoresNoScheduleTaints, tainttoleration.Name, taintsNoExecuteName), CaughtBy: capTaints},
		{Profile: replace(BindsToUnschedulableNodes, nodeunschedulable.Name, ""), CaughtBy: capUnschedulableNode,
			AlsoFails: []spec.Capability{capRequeue, capPriority}},
		// A scheduler that never retries turns any spec's transient miss (a
		// cycle run before its informers saw a pod the spec created just
		// before) into a permanent one, so the affinity specs, whose pods
		// depend on pods created a moment earlier, may fail too (seen once
		// in a CI rehearsal, on pod-anti-affinity).
		{Profile: neverRequeue, CaughtBy: capRequeue,
			AlsoFails: []spec.Capability{capPriority, capPreemption, capPodAffinity, capPodAntiAffinity}},
		{Profile: replace(PreemptsHigherPriority, defaultpreemption.Name, preemptsAnyPriorityName), CaughtBy: capPreemption,
			AlsoFails: []spec.Capability{capPriority}},
		{Profile: replace(IgnoresIncomingInit, noderesources.FitName, fitIncomingInitName), CaughtBy: capResources},
		{Profile: replace(SidecarAsInit, noderesources.FitName, fitSidecarAsInitName), CaughtBy: capResources},
		{Profile: replace(ANDsAffinityTerms, nodeaffinity.Name, affinityANDsTermsName), CaughtBy: capNodeAffinity},
		{Profile: replace(PreemptionIgnoresPDBs, defaultpreemption.Name, preemptionNoPDBsName), CaughtBy: capPreemption},
		{Profile: replace(EmptyKeyTolerationNarrow, tainttoleration.Name, tolerationNarrowName), CaughtBy: capTaints},
		{Profile: replace(HostPortLiteralIP, nodeports.Name, portsLiteralIPName), CaughtBy: capHostPorts},
		{Profile: replace(SpreadAnywayAsHard, podtopologyspread.Name, spreadAnywayHardName), CaughtBy: capTopologySpread},
		{Profile: replace(IgnoresIncomingOverhead, noderesources.FitName, fitIncomingOverheadName), CaughtBy: capResources},
		{Profile: replace(TopologyKeyAsHostname, interpodaffinity.Name, affinityHostnameName), CaughtBy: capPodAffinity,
			AlsoFails: []spec.Capability{capPodAntiAffinity}},
	}
}

// Profiles returns the profiles of Catalog.
func Profiles() []spec.Profile {
	var out []spec.Profile
	for _, b := range Catalog() {
		out = append(out, b.Profile)
	}
	return out
}

// withoutMemory returns a copy of pod whose containers, init containers
// and overhead request no memory.
func withoutMemory(pod *corev1.Pod) *corev1.Pod {
	p := pod.DeepCopy()
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for i := range cs {
			delete(cs[i].Resources.Requests, corev1.ResourceMemory)
			delete(cs[i].Resources.Limits, corev1.ResourceMemory)
		}
	}
	delete(p.Spec.Overhead, corev1.ResourceMemory)
	return p
}

// fitIgnoresMemory filters as NodeResourcesFit on the pod without its
// memory requests.
type fitIgnoresMemory struct {
	pre    spec.PreFilterPlugin
	filter spec.FilterPlugin
}

func newFitIgnoresMemory(args map[string]string, h spec.SchedulerHandle) (spec.Named, error) {
	real, err := noderesources.NewFit(args, h)
	if err != nil {
		return nil, err
	}
	pl := &fitIgnoresMemory{filter: real.(spec.FilterPlugin)}
	pl.pre, _ = real.(spec.PreFilterPlugin)
	return pl, nil
}

// Name implements spec.Named.
func (*fitIgnoresMemory) Name() string { return fitIgnoresMemoryName }

// PreFilter implements spec.PreFilterPlugin.
func (pl *fitIgnoresMemory) PreFilter(ctx context.Context, state *spec.CycleState, pod *corev1.Pod, snap spec.Snapshot) *spec.Status {
	if pl.pre == nil {
		return nil
	}
	return pl.pre.PreFilter(ctx, state, withoutMemory(pod), snap)
}

// Filter implements spec.FilterPlugin.
func (pl *fitIgnoresMemory) Filter(ctx context.Context, state *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) *spec.Status {
	return pl.filter.Filter(ctx, state, withoutMemory(pod), node)
}

// taintsNoExecute filters as TaintToleration on the node without its
// NoSchedule taints.
type taintsNoExecute struct{ filter spec.FilterPlugin }

func newTaintsNoExecute(args map[string]string, h spec.SchedulerHandle) (spec.Named, error) {
	real, err := tainttoleration.New(args, h)
	if err != nil {
		return nil, err
	}
	return &taintsNoExecute{filter: real.(spec.FilterPlugin)}, nil
}

// Name implements spec.Named.
func (*taintsNoExecute) Name() string { return taintsNoExecuteName }

// Filter implements spec.FilterPlugin.
func (pl *taintsNoExecute) Filter(ctx context.Context, state *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) *spec.Status {
	n := *node
	nodeCopy := node.Node.DeepCopy()
	nodeCopy.Spec.Taints = slices.DeleteFunc(nodeCopy.Spec.Taints, func(t corev1.Taint) bool { return t.Effect == corev1.TaintEffectNoSchedule })
	n.Node = nodeCopy
	return pl.filter.Filter(ctx, state, pod, &n)
}

// neverRequeue remembers, at PostFilter (which the scheduler reaches only
// when no node fits and no earlier PostFilter nominated one), the pods it
// saw, and rejects them at PreFilter ever after.
type neverRequeue struct {
	mu       sync.Mutex
	rejected map[types.UID]bool
}

func newNeverRequeue(map[string]string, spec.SchedulerHandle) (spec.Named, error) {
	return &neverRequeue{rejected: map[types.UID]bool{}}, nil
}

// Name implements spec.Named.
func (*neverRequeue) Name() string { return neverRequeueName }

// PreFilter implements spec.PreFilterPlugin.
func (pl *neverRequeue) PreFilter(_ context.Context, _ *spec.CycleState, pod *corev1.Pod, _ spec.Snapshot) *spec.Status {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.rejected[pod.UID] {
		return spec.NewStatus(spec.UnschedulableAndUnresolvable, "broken: this pod fitted nowhere once")
	}
	return nil
}

// PostFilter implements spec.PostFilterPlugin. It remembers only pods
// judged against a snapshot holding a node their nodeSelector selects: a
// pod tried before its nodes reached the scheduler's cache is no sign of
// the bug, and rejecting it would fail specs of other capabilities at
// random.
func (pl *neverRequeue) PostFilter(_ context.Context, _ *spec.CycleState, pod *corev1.Pod, snap spec.Snapshot, _ map[string]*spec.Status) (string, *spec.Status) {
	sel := labels.SelectorFromSet(pod.Spec.NodeSelector)
	if !slices.ContainsFunc(snap.Nodes(), func(n *spec.NodeInfo) bool { return n.Node != nil && sel.Matches(labels.Set(n.Node.Labels)) }) {
		return "", spec.NewStatus(spec.Unschedulable)
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.rejected[pod.UID] = true
	return "", spec.NewStatus(spec.Unschedulable)
}

// preemptsAnyPriority preempts, for a pod of positive priority, as
// DefaultPreemption would for a pod of the highest priority: every other
// pod looks lower. Pods of priority 0 preempt as DefaultPreemption has them.
type preemptsAnyPriority struct{ post spec.PostFilterPlugin }

func newPreemptsAnyPriority(args map[string]string, h spec.SchedulerHandle) (spec.Named, error) {
	real, err := defaultpreemption.New(args, h)
	if err != nil {
		return nil, err
	}
	return &preemptsAnyPriority{post: real.(spec.PostFilterPlugin)}, nil
}

// Name implements spec.Named.
func (*preemptsAnyPriority) Name() string { return preemptsAnyPriorityName }

// PostFilter implements spec.PostFilterPlugin.
func (pl *preemptsAnyPriority) PostFilter(ctx context.Context, state *spec.CycleState, pod *corev1.Pod, snap spec.Snapshot, filtered map[string]*spec.Status) (string, *spec.Status) {
	if pod.Spec.Priority == nil || *pod.Spec.Priority <= 0 {
		return pl.post.PostFilter(ctx, state, pod, snap, filtered)
	}
	p := pod.DeepCopy()
	p.Spec.Priority = func() *int32 { v := int32(math.MaxInt32); return &v }()
	return pl.post.PostFilter(ctx, state, p, snap, filtered)
}

// withoutInit returns a copy of pod without its init containers.
func withoutInit(pod *corev1.Pod) *corev1.Pod {
	p := pod.DeepCopy()
	p.Spec.InitContainers = nil // BUG: the incoming pod's init containers are not counted
	return p
}

// sidecarsAsInit returns a copy of pod whose sidecars are plain init
// containers.
func sidecarsAsInit(pod *corev1.Pod) *corev1.Pod {
	p := pod.DeepCopy()
	for i := range p.Spec.InitContainers {
		p.Spec.InitContainers[i].RestartPolicy = nil // BUG: a sidecar's requests no longer add to the app's
	}
	return p
}

// fitOn filters as NodeResourcesFit on the pod as transform returns it;
// the pods already on a node are counted correctly.
type fitOn struct {
	name      string
	transform func(*corev1.Pod) *corev1.Pod
	pre       spec.PreFilterPlugin
	filter    spec.FilterPlugin
}

func newFitOn(name string, transform func(*corev1.Pod) *corev1.Pod) spec.SchedulerPluginFactory {
	return func(args map[string]string, h spec.SchedulerHandle) (spec.Named, error) {
		real, err := noderesources.NewFit(args, h)
		if err != nil {
			return nil, err
		}
		pl := &fitOn{name: name, transform: transform, filter: real.(spec.FilterPlugin)}
		pl.pre, _ = real.(spec.PreFilterPlugin)
		return pl, nil
	}
}

// Name implements spec.Named.
func (pl *fitOn) Name() string { return pl.name }

// PreFilter implements spec.PreFilterPlugin.
func (pl *fitOn) PreFilter(ctx context.Context, state *spec.CycleState, pod *corev1.Pod, snap spec.Snapshot) *spec.Status {
	if pl.pre == nil {
		return nil
	}
	return pl.pre.PreFilter(ctx, state, pl.transform(pod), snap)
}

// Filter implements spec.FilterPlugin.
func (pl *fitOn) Filter(ctx context.Context, state *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) *spec.Status {
	return pl.filter.Filter(ctx, state, pl.transform(pod), node)
}

// affinityANDsTerms is NodeAffinity (scores and all) whose Filter runs
// once per nodeSelectorTerm of the pod and requires every one to pass.
type affinityANDsTerms struct{ nodeaffinity.NodeAffinity }

func newAffinityANDsTerms(args map[string]string, h spec.SchedulerHandle) (spec.Named, error) {
	real, err := nodeaffinity.New(args, h)
	if err != nil {
		return nil, err
	}
	return &affinityANDsTerms{real.(nodeaffinity.NodeAffinity)}, nil
}

// Name implements spec.Named.
func (*affinityANDsTerms) Name() string { return affinityANDsTermsName }

// Filter implements spec.FilterPlugin.
func (pl *affinityANDsTerms) Filter(ctx context.Context, _ *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) *spec.Status {
	aff := pod.Spec.Affinity
	if aff == nil || aff.NodeAffinity == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return pl.NodeAffinity.Filter(ctx, &spec.CycleState{}, pod, node)
	}
	for _, term := range aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		p := pod.DeepCopy()
		p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = []corev1.NodeSelectorTerm{term}
		if st := pl.NodeAffinity.Filter(ctx, &spec.CycleState{}, p, node); !st.IsSuccess() {
			return st // BUG: every term must match, not one
		}
	}
	return nil
}

// noPDBs is a scheduler handle that sees no PodDisruptionBudget.
type noPDBs struct{ spec.SchedulerHandle }

// PodDisruptionBudgets implements spec.SchedulerHandle.
func (noPDBs) PodDisruptionBudgets() []*policyv1.PodDisruptionBudget {
	return nil // BUG: budgets never protect a victim
}

func newPreemptionIgnoresPDBs(args map[string]string, h spec.SchedulerHandle) (spec.Named, error) {
	return newPreemptionNamed(preemptionNoPDBsName, args, noPDBs{h})
}

// namedPostFilter is a PostFilter plugin under another name.
type namedPostFilter struct {
	name string
	spec.PostFilterPlugin
}

// Name implements spec.Named.
func (pl namedPostFilter) Name() string { return pl.name }

func newPreemptionNamed(name string, args map[string]string, h spec.SchedulerHandle) (spec.Named, error) {
	real, err := defaultpreemption.New(args, h)
	if err != nil {
		return nil, err
	}
	return namedPostFilter{name: name, PostFilterPlugin: real.(spec.PostFilterPlugin)}, nil
}

// tolerationNarrow filters as TaintToleration on the pod without its
// tolerations of an empty key with operator Exists.
type tolerationNarrow struct{ filter spec.FilterPlugin }

func newTolerationNarrow(args map[string]string, h spec.SchedulerHandle) (spec.Named, error) {
	real, err := tainttoleration.New(args, h)
	if err != nil {
		return nil, err
	}
	return &tolerationNarrow{filter: real.(spec.FilterPlugin)}, nil
}

// Name implements spec.Named.
func (*tolerationNarrow) Name() string { return tolerationNarrowName }

// Filter implements spec.FilterPlugin.
func (pl *tolerationNarrow) Filter(ctx context.Context, state *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) *spec.Status {
	p := pod.DeepCopy()
	// BUG: keys are compared before the operator, so an empty key matches
	// only an empty key, which no taint of the suite has.
	p.Spec.Tolerations = slices.DeleteFunc(p.Spec.Tolerations, func(t corev1.Toleration) bool {
		return t.Key == "" && t.Operator == corev1.TolerationOpExists
	})
	return pl.filter.Filter(ctx, state, p, node)
}

// portsLiteralIP is NodePorts with host IPs compared literally: a wanted
// port conflicts only with the same protocol, host IP and port.
type portsLiteralIP struct{}

func newPortsLiteralIP(map[string]string, spec.SchedulerHandle) (spec.Named, error) {
	return portsLiteralIP{}, nil
}

// Name implements spec.Named.
func (portsLiteralIP) Name() string { return portsLiteralIPName }

// Filter implements spec.FilterPlugin.
func (portsLiteralIP) Filter(_ context.Context, _ *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) *spec.Status {
	for _, k := range spec.PodHostPorts(pod) {
		if node.UsedPorts[k] { // BUG: 0.0.0.0 is taken for one more address, not for every one
			return spec.NewStatus(spec.Unschedulable, nodeports.ErrReason)
		}
	}
	return nil
}

// spreadAnywayHard is PodTopologySpread (scores and all) whose PreFilter
// and Filter see every constraint as DoNotSchedule.
type spreadAnywayHard struct {
	*podtopologyspread.PodTopologySpread
}

func newSpreadAnywayHard(args map[string]string, h spec.SchedulerHandle) (spec.Named, error) {
	real, err := podtopologyspread.New(args, h)
	if err != nil {
		return nil, err
	}
	return spreadAnywayHard{real.(*podtopologyspread.PodTopologySpread)}, nil
}

// Name implements spec.Named.
func (spreadAnywayHard) Name() string { return spreadAnywayHardName }

// allHard returns a copy of pod whose spread constraints are all
// DoNotSchedule.
func allHard(pod *corev1.Pod) *corev1.Pod {
	p := pod.DeepCopy()
	for i := range p.Spec.TopologySpreadConstraints {
		p.Spec.TopologySpreadConstraints[i].WhenUnsatisfiable = corev1.DoNotSchedule // BUG: a soft constraint filters
	}
	return p
}

// PreFilter implements spec.PreFilterPlugin.
func (pl spreadAnywayHard) PreFilter(ctx context.Context, state *spec.CycleState, pod *corev1.Pod, snap spec.Snapshot) *spec.Status {
	return pl.PodTopologySpread.PreFilter(ctx, state, allHard(pod), snap)
}

// Filter implements spec.FilterPlugin.
func (pl spreadAnywayHard) Filter(ctx context.Context, state *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) *spec.Status {
	return pl.PodTopologySpread.Filter(ctx, state, allHard(pod), node)
}

// withoutOverhead returns a copy of pod without its overhead.
func withoutOverhead(pod *corev1.Pod) *corev1.Pod {
	p := pod.DeepCopy()
	p.Spec.Overhead = nil // BUG: the incoming pod's overhead is not counted
	return p
}

// affinityHostname is InterPodAffinity (scores and all) whose PreFilter
// sees the incoming pod's required terms with the hostname as their
// topologyKey.
type affinityHostname struct {
	*interpodaffinity.InterPodAffinity
}

func newAffinityHostname(args map[string]string, h spec.SchedulerHandle) (spec.Named, error) {
	real, err := interpodaffinity.New(args, h)
	if err != nil {
		return nil, err
	}
	return affinityHostname{real.(*interpodaffinity.InterPodAffinity)}, nil
}

// Name implements spec.Named.
func (affinityHostname) Name() string { return affinityHostnameName }

// PreFilter implements spec.PreFilterPlugin.
func (pl affinityHostname) PreFilter(ctx context.Context, state *spec.CycleState, pod *corev1.Pod, snap spec.Snapshot) *spec.Status {
	p := pod.DeepCopy()
	if a := p.Spec.Affinity; a != nil {
		perNode := func(terms []corev1.PodAffinityTerm) {
			for i := range terms {
				terms[i].TopologyKey = corev1.LabelHostname // BUG: the topologyKey is ignored
			}
		}
		if a.PodAffinity != nil {
			perNode(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
		}
		if a.PodAntiAffinity != nil {
			perNode(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
		}
	}
	return pl.InterPodAffinity.PreFilter(ctx, state, p, snap)
}
