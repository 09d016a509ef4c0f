// Package noderesources holds the resource scheduler plugins:
// NodeResourcesFit (Filter: the pod's requests fit the node's free
// allocatable; Score: LeastAllocated or MostAllocated) and
// NodeResourcesBalancedAllocation (Score: balanced cpu/memory use).
package noderesources

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
	"github.com/kubelab/kubelab/spec"
)

// Fit implements these extension points (checked at compile time).
var (
	_ spec.PreFilterPlugin = (*Fit)(nil)
	_ spec.FilterPlugin    = (*Fit)(nil)
	_ spec.PreScorePlugin  = (*Fit)(nil)
	_ spec.ScorePlugin     = (*Fit)(nil)
)

// Names, as upstream.
const (
	FitName                = "NodeResourcesFit"
	BalancedAllocationName = "NodeResourcesBalancedAllocation"
)

// Scoring strategies of NodeResourcesFit (the scoringStrategy arg).
const (
	LeastAllocated = "LeastAllocated"
	MostAllocated  = "MostAllocated"
)

// Args of both plugins.
const (
	// ArgScoringStrategy is LeastAllocated (default) or MostAllocated.
	ArgScoringStrategy = "scoringStrategy"
	// ArgResources lists the scored resources and their weights, as
	// "cpu=1,memory=1" (the default).
	ArgResources = "resources"
	// ArgIgnoredResources lists extended resources Filter does not check,
	// comma-separated (as upstream's ignoredResources).
	ArgIgnoredResources = "ignoredResources"
	// ArgIgnoredResourceGroups lists extended resource prefixes (the part
	// before "/") Filter does not check (upstream's ignoredResourceGroups).
	ArgIgnoredResourceGroups = "ignoredResourceGroups"
)

// ErrReasonTooManyPods is the reason for a node at its pod capacity.
const ErrReasonTooManyPods = "Too many pods"

// InsufficientReason returns the reason for a resource the node lacks,
// "Insufficient cpu" etc., as upstream.
func InsufficientReason(name corev1.ResourceName) string { return "Insufficient " + string(name) }

const (
	preFilterKey = "PreFilter" + FitName
	preScoreKey  = "PreScore" + FitName
	balancedKey  = "PreScore" + BalancedAllocationName
)

// FitPlugin returns NodeResourcesFit's registry entry.
func FitPlugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{
		Name:        FitName,
		Description: "Filter: requests (cpu, memory, pods, ephemeral-storage, extended) fit; Score: scoringStrategy=LeastAllocated|MostAllocated, resources=cpu=1,memory=1",
		New:         NewFit,
	}
}

// BalancedAllocationPlugin returns NodeResourcesBalancedAllocation's
// registry entry.
func BalancedAllocationPlugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{
		Name:        BalancedAllocationName,
		Description: "Score: nodes whose resource fractions stay balanced after placing the pod; resources=cpu=1,memory=1",
		New:         NewBalancedAllocation,
	}
}

// ResourceWeight is one scored resource.
type ResourceWeight struct {
	Name   corev1.ResourceName
	Weight int64
}

var defaultResources = []ResourceWeight{{corev1.ResourceCPU, 1}, {corev1.ResourceMemory, 1}}

// ParseResources parses "cpu=1,memory=1"; weights must be 1..100 as
// upstream validates them.
func ParseResources(s string) ([]ResourceWeight, error) {
	var out []ResourceWeight
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		if !ok {
			w = "1"
		}
		weight, err := strconv.ParseInt(strings.TrimSpace(w), 10, 64)
		if err != nil || weight < 1 || weight > 100 {
			return nil, fmt.Errorf("resource weight %q: want an integer 1..100: %w", part, spec.ErrInvalid)
		}
		out = append(out, ResourceWeight{corev1.ResourceName(strings.TrimSpace(name)), weight})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("resources %q: no resource: %w", s, spec.ErrInvalid)
	}
	return out, nil
}

func resourcesArg(plugin string, args map[string]string) ([]ResourceWeight, error) {
	s, ok := args[ArgResources]
	if !ok {
		return defaultResources, nil
	}
	r, err := ParseResources(s)
	if err != nil {
		return nil, fmt.Errorf("scheduler plugin %s: %w", plugin, err)
	}
	return r, nil
}

// Fit is NodeResourcesFit; it implements spec.PreFilterPlugin,
// spec.FilterPlugin, spec.PreScorePlugin and spec.ScorePlugin.
type Fit struct {
	noScore       bool
	strategy      string
	resources     []ResourceWeight
	ignored       map[string]bool
	ignoredGroups map[string]bool
}

// NewFit builds NodeResourcesFit from its args (scoringStrategy,
// resources, ignoredResources, ignoredResourceGroups, and score=false for a
// filter-only instance).
func NewFit(args map[string]string, _ spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(FitName, args, ArgScoringStrategy, ArgResources, ArgIgnoredResources, ArgIgnoredResourceGroups, pluginhelper.ArgScore); err != nil {
		return nil, err
	}
	f := &Fit{strategy: LeastAllocated}
	if s, ok := args[ArgScoringStrategy]; ok {
		switch s {
		case LeastAllocated, MostAllocated:
			f.strategy = s
		default:
			return nil, fmt.Errorf("scheduler plugin %s: scoringStrategy %q: want %s or %s: %w", FitName, s, LeastAllocated, MostAllocated, spec.ErrInvalid)
		}
	}
	score, err := pluginhelper.ScoreEnabled(FitName, args)
	if err != nil {
		return nil, err
	}
	f.noScore = !score
	f.ignored, f.ignoredGroups = list(args[ArgIgnoredResources]), list(args[ArgIgnoredResourceGroups])
	if f.resources, err = resourcesArg(FitName, args); err != nil {
		return nil, err
	}
	return f, nil
}

// Name implements spec.Named.
func (*Fit) Name() string { return FitName }

// Strategy returns the scoring strategy.
func (f *Fit) Strategy() string { return f.strategy }

// scalar is one requested resource other than cpu, memory, ephemeral
// storage and pods.
type scalar struct {
	name  corev1.ResourceName
	value int64
}

// request is a pod's requests, precomputed for Filter.
type request struct {
	milliCPU, memory, ephemeral int64
	scalars                     []scalar
}

func list(s string) map[string]bool {
	out := map[string]bool{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out[v] = true
		}
	}
	return out
}

// isExtended reports whether name is an extended resource (a qualified
// name outside the kubernetes.io domain).
func isExtended(name corev1.ResourceName) bool {
	n := string(name)
	return strings.Contains(n, "/") && !strings.Contains(n, corev1.ResourceDefaultNamespacePrefix)
}

// computeRequest is the package's computeRequest without the extended
// resources the plugin's args say to ignore.
func (f *Fit) computeRequest(pod *corev1.Pod) *request {
	r := computeRequest(pod)
	if len(f.ignored) == 0 && len(f.ignoredGroups) == 0 {
		return r
	}
	kept := r.scalars[:0]
	for _, sc := range r.scalars {
		if isExtended(sc.name) {
			group, _, _ := strings.Cut(string(sc.name), "/")
			if f.ignored[string(sc.name)] || f.ignoredGroups[group] {
				continue
			}
		}
		kept = append(kept, sc)
	}
	r.scalars = kept
	return r
}

func computeRequest(pod *corev1.Pod) *request {
	r := &request{}
	for name, q := range spec.PodRequests(pod) {
		switch name {
		case corev1.ResourceCPU:
			r.milliCPU = q.MilliValue()
		case corev1.ResourceMemory:
			r.memory = q.Value()
		case corev1.ResourceEphemeralStorage:
			r.ephemeral = q.Value()
		case corev1.ResourcePods:
		default:
			if v := q.Value(); v > 0 {
				r.scalars = append(r.scalars, scalar{name, v})
			}
		}
	}
	sort.Slice(r.scalars, func(i, j int) bool { return r.scalars[i].name < r.scalars[j].name })
	return r
}

// PreFilter computes the pod's requests (init containers and overhead
// included) once.
func (f *Fit) PreFilter(_ context.Context, state *spec.CycleState, pod *corev1.Pod, _ spec.Snapshot) *spec.Status {
	state.Write(preFilterKey, f.computeRequest(pod))
	return nil
}

func value(l corev1.ResourceList, name corev1.ResourceName) int64 {
	q, ok := l[name]
	if !ok {
		return 0
	}
	if name == corev1.ResourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

// Filter rejects a node whose pod capacity is reached ("Too many pods") or
// whose free allocatable is less than a non-zero request ("Insufficient
// cpu", …), listing every reason. The code is Unschedulable, so preemption
// may help, except when a request exceeds the node's whole allocatable:
// then it is UnschedulableAndUnresolvable, as upstream.
func (f *Fit) Filter(_ context.Context, state *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) *spec.Status {
	var r *request
	if v, err := state.Read(preFilterKey); err == nil {
		r = v.(*request)
	} else {
		r = f.computeRequest(pod)
	}
	return fits(r, node)
}

// allocatableOf and requestedOf read a node's figure for one resource,
// from the integer Counts when the spec helpers maintain them.
func allocatableOf(node *spec.NodeInfo, name corev1.ResourceName) int64 {
	if c := &node.Counts; c.Valid {
		switch name {
		case corev1.ResourceCPU:
			return c.AllocatableMilliCPU
		case corev1.ResourceMemory:
			return c.AllocatableMemory
		case corev1.ResourceEphemeralStorage:
			return c.AllocatableEphemeralStorage
		case corev1.ResourcePods:
			return c.AllocatablePods
		}
	}
	return value(node.Allocatable, name)
}

func requestedOf(node *spec.NodeInfo, name corev1.ResourceName, nonZero bool) int64 {
	if c := &node.Counts; c.Valid {
		switch name {
		case corev1.ResourceCPU:
			if nonZero {
				return c.NonZeroMilliCPU
			}
			return c.RequestedMilliCPU
		case corev1.ResourceMemory:
			if nonZero {
				return c.NonZeroMemory
			}
			return c.RequestedMemory
		case corev1.ResourceEphemeralStorage:
			return c.RequestedEphemeralStorage
		}
	}
	if nonZero && (name == corev1.ResourceCPU || name == corev1.ResourceMemory) {
		return value(node.NonZeroRequested, name)
	}
	return value(node.Requested, name)
}

func fits(r *request, node *spec.NodeInfo) *spec.Status {
	var reasons []string
	unresolvable := false
	if int64(len(node.Pods))+1 > allocatableOf(node, corev1.ResourcePods) {
		reasons = append(reasons, ErrReasonTooManyPods)
	}
	check := func(name corev1.ResourceName, want int64) {
		if want <= 0 {
			return
		}
		alloc := allocatableOf(node, name)
		if want > alloc-requestedOf(node, name, false) {
			reasons = append(reasons, InsufficientReason(name))
			if want > alloc {
				unresolvable = true
			}
		}
	}
	check(corev1.ResourceCPU, r.milliCPU)
	check(corev1.ResourceMemory, r.memory)
	check(corev1.ResourceEphemeralStorage, r.ephemeral)
	for _, s := range r.scalars {
		check(s.name, s.value)
	}
	if len(reasons) == 0 {
		return nil
	}
	code := spec.Unschedulable
	if unresolvable {
		code = spec.UnschedulableAndUnresolvable
	}
	return spec.NewStatus(code, reasons...)
}

// Fits reports why pod does not fit node by resources (nil when it does):
// the same check as Filter, for callers outside a scheduling cycle.
func Fits(pod *corev1.Pod, node *spec.NodeInfo) *spec.Status { return fits(computeRequest(pod), node) }

// podScoreRequests returns the pod's request of each scored resource:
// cpu and memory as the scheduler's scoring counts them (nonZero: a
// container without a request counts as 100m / 200Mi) or as requested.
func podScoreRequests(pod *corev1.Pod, resources []ResourceWeight, nonZero bool) []int64 {
	req := spec.PodRequests(pod)
	var nz corev1.ResourceList
	if nonZero {
		nz = spec.PodNonZeroRequests(pod)
	}
	out := make([]int64, len(resources))
	for i, rw := range resources {
		if nonZero && (rw.Name == corev1.ResourceCPU || rw.Name == corev1.ResourceMemory) {
			out[i] = value(nz, rw.Name)
			continue
		}
		out[i] = value(req, rw.Name)
	}
	return out
}

// nodeUse fills requested (node's use plus the pod's request) and
// allocatable for each scored resource; an entry stays 0 (and is not
// scored) when the node has none of the resource, or when it is an
// extended resource the pod does not request.
func nodeUse(node *spec.NodeInfo, resources []ResourceWeight, podReq []int64, nonZero bool, requested, allocated, allocatable []int64) {
	for i, rw := range resources {
		requested[i], allocated[i], allocatable[i] = 0, 0, 0
		native := rw.Name == corev1.ResourceCPU || rw.Name == corev1.ResourceMemory || rw.Name == corev1.ResourceEphemeralStorage
		if podReq[i] == 0 && !native {
			continue
		}
		alloc := allocatableOf(node, rw.Name)
		if alloc == 0 {
			continue
		}
		used := requestedOf(node, rw.Name, nonZero)
		allocatable[i] = alloc
		allocated[i] = used
		requested[i] = used + podReq[i]
	}
}

// PreScore computes the pod's scored requests.
func (f *Fit) PreScore(_ context.Context, state *spec.CycleState, pod *corev1.Pod, _ []*spec.NodeInfo) *spec.Status {
	if f.noScore {
		return spec.NewStatus(spec.Skip)
	}
	state.Write(preScoreKey, podScoreRequests(pod, f.resources, true))
	return nil
}

// Score is the weighted average over the scored resources of the node's
// free fraction after placing the pod (LeastAllocated) or its used fraction
// (MostAllocated), times MaxNodeScore.
func (f *Fit) Score(_ context.Context, state *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) (int64, *spec.Status) {
	var podReq []int64
	if v, err := state.Read(preScoreKey); err == nil {
		podReq = v.([]int64)
	} else {
		podReq = podScoreRequests(pod, f.resources, true)
	}
	return AllocationScore(f.strategy, node, f.resources, podReq), nil
}

// AllocationScore scores node for a pod requesting podReq (one entry per
// resource, non-zero cpu/memory) with strategy LeastAllocated or
// MostAllocated; the baselines share it.
func AllocationScore(strategy string, node *spec.NodeInfo, resources []ResourceWeight, podReq []int64) int64 {
	var buf [3][4]int64
	requested, allocated, allocatable := buf[0][:0], buf[1][:0], buf[2][:0]
	if len(resources) > 4 {
		requested, allocated, allocatable = make([]int64, 0, len(resources)), make([]int64, 0, len(resources)), make([]int64, 0, len(resources))
	}
	requested, allocated, allocatable = requested[:len(resources)], allocated[:len(resources)], allocatable[:len(resources)]
	nodeUse(node, resources, podReq, true, requested, allocated, allocatable)
	var sum, weights int64
	for i, rw := range resources {
		if allocatable[i] == 0 {
			continue
		}
		var s int64
		req, capacity := requested[i], allocatable[i]
		if strategy == MostAllocated {
			if req > capacity {
				req = capacity
			}
			s = req * spec.MaxNodeScore / capacity
		} else if req <= capacity {
			s = (capacity - req) * spec.MaxNodeScore / capacity
		}
		sum += s * rw.Weight
		weights += rw.Weight
	}
	if weights == 0 {
		return 0
	}
	return sum / weights
}

// NormalizeScore leaves the scores, already in 0..MaxNodeScore.
func (*Fit) NormalizeScore(context.Context, *spec.CycleState, *corev1.Pod, []spec.NodeScore) *spec.Status {
	return nil
}

// DefaultResources returns the default scored resources, cpu=1,memory=1.
func DefaultResources() []ResourceWeight { return append([]ResourceWeight(nil), defaultResources...) }

// PodScoreRequests returns pod's request of each resource as scoring
// counts it (cpu and memory non-zero).
func PodScoreRequests(pod *corev1.Pod, resources []ResourceWeight) []int64 {
	return podScoreRequests(pod, resources, true)
}
