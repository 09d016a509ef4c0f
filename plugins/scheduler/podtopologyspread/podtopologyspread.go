// Package podtopologyspread is the PodTopologySpread scheduler plugin: it
// spreads pods matching a topology spread constraint's selector across the
// constraint's topology domains. DoNotSchedule constraints are enforced by
// Filter (skew ≤ maxSkew over the eligible domains, honouring minDomains,
// nodeAffinityPolicy and nodeTaintsPolicy); ScheduleAnyway constraints are
// preferences scored by Score.
//
// Not supported: the kube-scheduler's system default constraints (applied to
// pods without constraints, with a selector built from the Services and
// controllers owning the pod), because the contract's snapshot carries no
// Services or controllers. Pods without constraints are not spread.
package podtopologyspread

import (
	"context"
	"math"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
	"github.com/kubelab/kubelab/spec"
)

// PodTopologySpread implements these extension points (checked at compile time).
var (
	_ spec.PreFilterPlugin = (*PodTopologySpread)(nil)
	_ spec.FilterPlugin    = (*PodTopologySpread)(nil)
	_ spec.PreScorePlugin  = (*PodTopologySpread)(nil)
	_ spec.ScorePlugin     = (*PodTopologySpread)(nil)
)

// Name is the plugin's registry name, as upstream.
const Name = "PodTopologySpread"

// Failure reasons, as upstream.
const (
	ErrReasonConstraintsNotMatch = "node(s) didn't match pod topology spread constraints"
	ErrReasonNodeLabelNotMatch   = ErrReasonConstraintsNotMatch + " (missing required label)"
)

const (
	preFilterKey = "PreFilter" + Name
	preScoreKey  = "PreScore" + Name
)

// Plugin returns the registry entry.
func Plugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{Name: Name, Description: "Filter: DoNotSchedule topology spread constraints; Score: ScheduleAnyway constraints", New: New}
}

// PodTopologySpread implements spec.PreFilterPlugin, spec.FilterPlugin,
// spec.PreScorePlugin and spec.ScorePlugin.
type PodTopologySpread struct {
	h       spec.SchedulerHandle
	noScore bool
}

// New builds the plugin; its one arg is score=false (filter only). The handle's snapshot is used
// at PreScore to count pods on every node (not only the feasible ones);
// without a handle only the feasible nodes are counted.
func New(args map[string]string, h spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(Name, args, pluginhelper.ArgScore); err != nil {
		return nil, err
	}
	score, err := pluginhelper.ScoreEnabled(Name, args)
	if err != nil {
		return nil, err
	}
	return &PodTopologySpread{h: h, noScore: !score}, nil
}

// Name implements spec.Named.
func (*PodTopologySpread) Name() string { return Name }

// constraint is a parsed TopologySpreadConstraint.
type constraint struct {
	maxSkew           int32
	key               string
	selector          labels.Selector
	minDomains        int32
	honorNodeAffinity bool
	honorNodeTaints   bool
	selfMatch         bool
}

func parseConstraints(pod *corev1.Pod, action corev1.UnsatisfiableConstraintAction) ([]constraint, error) {
	var out []constraint
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable != action {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		if err != nil {
			return nil, err
		}
		if len(c.MatchLabelKeys) > 0 {
			set := labels.Set{}
			for _, k := range c.MatchLabelKeys {
				if v, ok := pod.Labels[k]; ok {
					set[k] = v
				}
			}
			if len(set) > 0 {
				if reqs, ok := sel.Requirements(); ok {
					merged := labels.SelectorFromSet(set)
					merged = merged.Add(reqs...)
					sel = merged
				}
			}
		}
		pc := constraint{
			maxSkew:           c.MaxSkew,
			key:               c.TopologyKey,
			selector:          sel,
			minDomains:        1,
			honorNodeAffinity: c.NodeAffinityPolicy == nil || *c.NodeAffinityPolicy == corev1.NodeInclusionPolicyHonor,
			honorNodeTaints:   c.NodeTaintsPolicy != nil && *c.NodeTaintsPolicy == corev1.NodeInclusionPolicyHonor,
		}
		if c.MinDomains != nil {
			pc.minDomains = *c.MinDomains
		}
		pc.selfMatch = sel.Matches(labels.Set(pod.Labels))
		out = append(out, pc)
	}
	return out, nil
}

func hasAllKeys(node *corev1.Node, cs []constraint) bool {
	for _, c := range cs {
		if _, ok := node.Labels[c.key]; !ok {
			return false
		}
	}
	return true
}

func doNotSchedule(t *corev1.Taint) bool {
	return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
}

// included reports whether node's pods count for constraint c, per its
// node inclusion policies.
func included(c *constraint, pod *corev1.Pod, node *corev1.Node, req *nodeaffinity.RequiredNodeAffinity) bool {
	if c.honorNodeAffinity {
		if ok, _ := req.Match(node); !ok {
			return false
		}
	}
	if c.honorNodeTaints {
		if _, bad := corev1helpers.FindMatchingUntoleratedTaint(pluginhelper.Logger, node.Spec.Taints, pod.Spec.Tolerations, doNotSchedule, false); bad {
			return false
		}
	}
	return true
}

// filterState is PreFilter's precomputation.
type filterState struct {
	constraints []constraint
	// counts[i] maps a domain (topology value) of constraint i to its
	// matching pods.
	counts []map[string]int32
	// minMatch[i] is the smallest count over constraint i's domains.
	minMatch []int32
}

// PreFilter counts, for each DoNotSchedule constraint, the matching pods
// in each eligible domain. A pod without such constraints skips Filter.
func (pl *PodTopologySpread) PreFilter(_ context.Context, state *spec.CycleState, pod *corev1.Pod, snap spec.Snapshot) *spec.Status {
	cs, err := parseConstraints(pod, corev1.DoNotSchedule)
	if err != nil {
		return spec.AsStatus(err)
	}
	if len(cs) == 0 {
		return spec.NewStatus(spec.Skip)
	}
	s := &filterState{constraints: cs, counts: make([]map[string]int32, len(cs)), minMatch: make([]int32, len(cs))}
	for i := range s.counts {
		s.counts[i] = map[string]int32{}
	}
	req := nodeaffinity.GetRequiredNodeAffinity(pod)
	nodes := snap.Nodes()
	partial := make([][]map[string]int32, pluginhelper.Workers(len(nodes)))
	pluginhelper.Chunks(len(nodes), func(w, lo, hi int) {
		counts := make([]map[string]int32, len(cs))
		for i := range counts {
			counts[i] = map[string]int32{}
		}
		partial[w] = counts
		for _, ni := range nodes[lo:hi] {
			node := ni.Node
			if node == nil || !hasAllKeys(node, cs) {
				continue
			}
			for i := range cs {
				c := &cs[i]
				if !included(c, pod, node, &req) {
					continue
				}
				counts[i][node.Labels[c.key]] += pluginhelper.CountMatching(ni.Pods, c.selector, pod.Namespace)
			}
		}
	})
	for _, counts := range partial {
		for i := range counts {
			for k, v := range counts[i] {
				s.counts[i][k] += v
			}
		}
	}
	for i := range cs {
		m := int32(math.MaxInt32)
		for _, n := range s.counts[i] {
			if n < m {
				m = n
			}
		}
		if int32(len(s.counts[i])) < cs[i].minDomains {
			// Fewer eligible domains than minDomains: the global minimum
			// is treated as 0, as upstream.
			m = 0
		}
		s.minMatch[i] = m
	}
	state.Write(preFilterKey, s)
	return nil
}

// Filter rejects a node lacking a constraint's topology key
// (UnschedulableAndUnresolvable, "… (missing required label)") and a node
// where placing the pod would make its domain's count exceed the global
// minimum by more than maxSkew (Unschedulable).
func (pl *PodTopologySpread) Filter(_ context.Context, state *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) *spec.Status {
	v, err := state.Read(preFilterKey)
	if err != nil {
		return spec.AsStatus(err)
	}
	s := v.(*filterState)
	if node.Node == nil {
		return spec.NewStatus(spec.UnschedulableAndUnresolvable, ErrReasonNodeLabelNotMatch)
	}
	for i := range s.constraints {
		c := &s.constraints[i]
		val, ok := node.Node.Labels[c.key]
		if !ok {
			return spec.NewStatus(spec.UnschedulableAndUnresolvable, ErrReasonNodeLabelNotMatch)
		}
		self := int32(0)
		if c.selfMatch {
			self = 1
		}
		skew := int64(s.counts[i][val]) + int64(self) - int64(s.minMatch[i])
		if skew > int64(c.maxSkew) {
			return spec.NewStatus(spec.Unschedulable, ErrReasonConstraintsNotMatch)
		}
	}
	return nil
}

// scoreState is PreScore's precomputation.
type scoreState struct {
	constraints []constraint
	ignored     map[string]bool
	counts      []map[string]int64
	weights     []float64
}

// PreScore counts, for each ScheduleAnyway constraint, the matching pods
// in the domains of the feasible nodes (counting pods on every eligible
// node of the snapshot). Feasible nodes lacking a constraint's key are
// ignored (score 0). A pod without such constraints skips Score.
func (pl *PodTopologySpread) PreScore(_ context.Context, state *spec.CycleState, pod *corev1.Pod, nodes []*spec.NodeInfo) *spec.Status {
	if pl.noScore {
		return spec.NewStatus(spec.Skip)
	}
	cs, err := parseConstraints(pod, corev1.ScheduleAnyway)
	if err != nil {
		return spec.AsStatus(err)
	}
	if len(cs) == 0 || len(nodes) == 0 {
		return spec.NewStatus(spec.Skip)
	}
	s := &scoreState{constraints: cs, ignored: map[string]bool{}, counts: make([]map[string]int64, len(cs)), weights: make([]float64, len(cs))}
	size := make([]int, len(cs))
	for i := range s.counts {
		s.counts[i] = map[string]int64{}
	}
	for _, ni := range nodes {
		if ni.Node == nil || !hasAllKeys(ni.Node, cs) {
			s.ignored[ni.Name()] = true
			continue
		}
		for i := range cs {
			if cs[i].key == corev1.LabelHostname {
				continue
			}
			val := ni.Node.Labels[cs[i].key]
			if _, ok := s.counts[i][val]; !ok {
				s.counts[i][val] = 0
				size[i]++
			}
		}
	}
	for i := range cs {
		sz := size[i]
		if cs[i].key == corev1.LabelHostname {
			sz = len(nodes) - len(s.ignored)
		}
		s.weights[i] = math.Log(float64(sz + 2))
	}
	all := nodes
	if pl.h != nil {
		if snap := pl.h.Snapshot(); snap != nil {
			all = snap.Nodes()
		}
	}
	req := nodeaffinity.GetRequiredNodeAffinity(pod)
	partial := make([][]map[string]int64, pluginhelper.Workers(len(all)))
	pluginhelper.Chunks(len(all), func(w, lo, hi int) {
		counts := make([]map[string]int64, len(cs))
		for i := range counts {
			counts[i] = map[string]int64{}
		}
		partial[w] = counts
		for _, ni := range all[lo:hi] {
			node := ni.Node
			if node == nil || !hasAllKeys(node, cs) {
				continue
			}
			for i := range cs {
				c := &cs[i]
				if c.key == corev1.LabelHostname || !included(c, pod, node, &req) {
					continue
				}
				val := node.Labels[c.key]
				if _, ok := s.counts[i][val]; !ok { // read-only here
					continue
				}
				counts[i][val] += int64(pluginhelper.CountMatching(ni.Pods, c.selector, pod.Namespace))
			}
		}
	})
	for _, counts := range partial {
		for i := range counts {
			for k, v := range counts[i] {
				s.counts[i][k] += v
			}
		}
	}
	state.Write(preScoreKey, s)
	return nil
}

// Score sums, over the constraints, (matching pods in the node's domain ×
// the constraint's weight log(domains+2)) + maxSkew − 1; fewer is better.
func (pl *PodTopologySpread) Score(_ context.Context, state *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) (int64, *spec.Status) {
	v, err := state.Read(preScoreKey)
	if err != nil {
		return 0, spec.AsStatus(err)
	}
	s := v.(*scoreState)
	if node.Node == nil || s.ignored[node.Name()] {
		return 0, nil
	}
	var score float64
	for i := range s.constraints {
		c := &s.constraints[i]
		val, ok := node.Node.Labels[c.key]
		if !ok {
			continue
		}
		var cnt int64
		if c.key == corev1.LabelHostname {
			cnt = int64(pluginhelper.CountMatching(node.Pods, c.selector, pod.Namespace))
		} else {
			cnt = s.counts[i][val]
		}
		score += float64(cnt)*s.weights[i] + float64(c.maxSkew-1)
	}
	return int64(math.Round(score)), nil
}

// NormalizeScore maps the lowest raw score to MaxNodeScore, as upstream:
// MaxNodeScore × (max + min − score) / max; ignored nodes get 0.
func (pl *PodTopologySpread) NormalizeScore(_ context.Context, state *spec.CycleState, _ *corev1.Pod, scores []spec.NodeScore) *spec.Status {
	v, err := state.Read(preScoreKey)
	if err != nil {
		return spec.AsStatus(err)
	}
	s := v.(*scoreState)
	minScore, maxScore := int64(math.MaxInt64), int64(0)
	for _, sc := range scores {
		if s.ignored[sc.Name] {
			continue
		}
		minScore = min(minScore, sc.Score)
		maxScore = max(maxScore, sc.Score)
	}
	for i := range scores {
		switch {
		case s.ignored[scores[i].Name]:
			scores[i].Score = 0
		case maxScore == 0:
			scores[i].Score = spec.MaxNodeScore
		default:
			scores[i].Score = spec.MaxNodeScore * (maxScore + minScore - scores[i].Score) / maxScore
		}
	}
	return nil
}
