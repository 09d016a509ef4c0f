// Package interpodaffinity is the InterPodAffinity scheduler plugin: Filter
// enforces the pod's required pod affinity and anti-affinity and the
// required anti-affinity of the pods already running; Score weighs the
// preferred terms of both sides (and existing pods' required affinity
// terms, by hardPodAffinityWeight).
//
// A term's namespaces are its namespaces list, plus those its
// namespaceSelector matches, or the owning pod's namespace when both are
// empty; an empty namespaceSelector ({}) matches every namespace. A
// non-empty namespaceSelector needs namespace labels, which only a Snapshot
// implementing spec.NamespaceLabeler provides; without it such a selector
// matches no namespace. matchLabelKeys/mismatchLabelKeys are merged into
// the labelSelector, as the kube-apiserver does at admission.
package interpodaffinity

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
	"github.com/kubelab/kubelab/spec"
)

// InterPodAffinity implements these extension points (checked at compile time).
var (
	_ spec.PreFilterPlugin = (*InterPodAffinity)(nil)
	_ spec.FilterPlugin    = (*InterPodAffinity)(nil)
	_ spec.PreScorePlugin  = (*InterPodAffinity)(nil)
	_ spec.ScorePlugin     = (*InterPodAffinity)(nil)
)

// Name is the plugin's registry name, as upstream.
const Name = "InterPodAffinity"

// Failure reasons, as upstream.
const (
	ErrReasonExistingAntiAffinityRulesNotMatch = "node(s) didn't satisfy existing pods anti-affinity rules"
	ErrReasonAffinityRulesNotMatch             = "node(s) didn't match pod affinity rules"
	ErrReasonAntiAffinityRulesNotMatch         = "node(s) didn't match pod anti-affinity rules"
)

// ArgHardPodAffinityWeight is the score weight of an existing pod's
// required affinity term that the incoming pod matches (default 1, 0..100).
const ArgHardPodAffinityWeight = "hardPodAffinityWeight"

const (
	preFilterKey = "PreFilter" + Name
	preScoreKey  = "PreScore" + Name
	// affinityNodesKey holds the nodes with pods with pod (anti-)affinity,
	// found by PreFilter.
	affinityNodesKey = "PreFilterNodes" + Name
)

// Plugin returns the registry entry.
func Plugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{Name: Name, Description: "Filter: required pod (anti-)affinity incl. existing pods' anti-affinity; Score: preferred terms; hardPodAffinityWeight=1", New: New}
}

// InterPodAffinity implements spec.PreFilterPlugin, spec.FilterPlugin,
// spec.PreScorePlugin and spec.ScorePlugin.
type InterPodAffinity struct {
	h          spec.SchedulerHandle
	hardWeight int64
	noScore    bool

	mu    sync.Mutex
	terms map[termsKey]*podTerms // parsed terms of existing pods
}

// New builds the plugin from its args (hardPodAffinityWeight, and
// score=false for a filter-only instance). The
// handle's snapshot is used at PreScore to see pods on every node.
func New(args map[string]string, h spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(Name, args, ArgHardPodAffinityWeight, pluginhelper.ArgScore); err != nil {
		return nil, err
	}
	pl := &InterPodAffinity{h: h, hardWeight: 1, terms: map[termsKey]*podTerms{}}
	if s, ok := args[ArgHardPodAffinityWeight]; ok {
		w, err := strconv.ParseInt(s, 10, 64)
		if err != nil || w < 0 || w > 100 {
			return nil, fmt.Errorf("scheduler plugin %s: %s=%q: want an integer 0..100: %w", Name, ArgHardPodAffinityWeight, s, spec.ErrInvalid)
		}
		pl.hardWeight = w
	}
	score, err := pluginhelper.ScoreEnabled(Name, args)
	if err != nil {
		return nil, err
	}
	pl.noScore = !score
	return pl, nil
}

// Name implements spec.Named.
func (*InterPodAffinity) Name() string { return Name }

// term is a parsed PodAffinityTerm (pluginhelper.AffinityTerm).
type term = pluginhelper.AffinityTerm

// podTerms are a pod's parsed affinity terms.
type podTerms struct {
	affinity, antiAffinity         []term // required
	prefAffinity, prefAntiAffinity []term
}

func (pt *podTerms) any() bool {
	return len(pt.affinity)+len(pt.antiAffinity)+len(pt.prefAffinity)+len(pt.prefAntiAffinity) > 0
}

func parsePod(pod *corev1.Pod) (*podTerms, error) {
	pt := &podTerms{}
	a := pod.Spec.Affinity
	if a == nil {
		return pt, nil
	}
	add := func(dst *[]term, t *corev1.PodAffinityTerm, w int32) error {
		pt, err := pluginhelper.ParseAffinityTerm(pod, t, w)
		if err != nil {
			return fmt.Errorf("pod %s/%s affinity term: %w", pod.Namespace, pod.Name, err)
		}
		*dst = append(*dst, pt)
		return nil
	}
	if pa := a.PodAffinity; pa != nil {
		for i := range pa.RequiredDuringSchedulingIgnoredDuringExecution {
			if err := add(&pt.affinity, &pa.RequiredDuringSchedulingIgnoredDuringExecution[i], 1); err != nil {
				return nil, err
			}
		}
		for i := range pa.PreferredDuringSchedulingIgnoredDuringExecution {
			w := &pa.PreferredDuringSchedulingIgnoredDuringExecution[i]
			if err := add(&pt.prefAffinity, &w.PodAffinityTerm, w.Weight); err != nil {
				return nil, err
			}
		}
	}
	if pa := a.PodAntiAffinity; pa != nil {
		for i := range pa.RequiredDuringSchedulingIgnoredDuringExecution {
			if err := add(&pt.antiAffinity, &pa.RequiredDuringSchedulingIgnoredDuringExecution[i], 1); err != nil {
				return nil, err
			}
		}
		for i := range pa.PreferredDuringSchedulingIgnoredDuringExecution {
			w := &pa.PreferredDuringSchedulingIgnoredDuringExecution[i]
			if err := add(&pt.prefAntiAffinity, &w.PodAffinityTerm, w.Weight); err != nil {
				return nil, err
			}
		}
	}
	return pt, nil
}

func hasPodAffinity(p *corev1.Pod) bool { return spec.HasPodAffinity(p) }

// podsWith returns list, one of ni's pod lists kept by the spec helpers,
// or all of ni's pods when ni was assembled by hand without them.
func podsWith(ni *spec.NodeInfo, list []*corev1.Pod) []*corev1.Pod {
	if ni.Counts.Valid {
		return list
	}
	return ni.Pods
}

// termsKey identifies a version of a pod (its terms depend on its spec
// and, through matchLabelKeys, its labels).
type termsKey struct {
	uid      types.UID
	rv       string
	ns, name string
}

// maxCachedTerms bounds the parsed-terms cache; it is emptied when full
// (deleted pods' entries go with it).
const maxCachedTerms = 100000

// existingTerms returns the parsed terms of an existing pod, cached by
// UID and resourceVersion (a pod whose parse fails has no terms).
func (pl *InterPodAffinity) existingTerms(p *corev1.Pod) *podTerms {
	key := termsKey{uid: p.UID, rv: p.ResourceVersion, ns: p.Namespace, name: p.Name}
	pl.mu.Lock()
	pt, ok := pl.terms[key]
	pl.mu.Unlock()
	if ok {
		return pt
	}
	pt, err := parsePod(p)
	if err != nil {
		pt = &podTerms{}
	}
	pl.mu.Lock()
	if len(pl.terms) >= maxCachedTerms {
		clear(pl.terms)
	}
	pl.terms[key] = pt
	pl.mu.Unlock()
	return pt
}

// nsLabels looks namespace labels up in the snapshot, when it can.
type nsLabels struct {
	l     spec.NamespaceLabeler
	mu    sync.Mutex
	cache map[string]labels.Set
}

func newNSLabels(snap spec.Snapshot) *nsLabels {
	n := &nsLabels{cache: map[string]labels.Set{}}
	n.l, _ = snap.(spec.NamespaceLabeler)
	return n
}

func (n *nsLabels) get(ns string) (labels.Set, bool) {
	if n == nil || n.l == nil {
		return nil, false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if s, ok := n.cache[ns]; ok {
		return s, s != nil
	}
	l, ok := n.l.NamespaceLabels(ns)
	if !ok {
		n.cache[ns] = nil
		return nil, false
	}
	n.cache[ns] = labels.Set(l)
	return labels.Set(l), true
}

type pair struct{ key, value string }

// filterState is PreFilter's precomputation.
type filterState struct {
	terms          *podTerms
	affinityCounts map[pair]int64
	antiCounts     map[pair]int64
	existingAnti   map[pair]int64
	selfMatch      bool // the pod matches all its own required affinity terms
}

// PreFilter counts, per topology pair, the pods matching the incoming
// pod's required affinity (all terms) and anti-affinity (each term), and
// the existing pods whose required anti-affinity rejects the incoming pod.
// It skips Filter when neither side has required terms.
func (pl *InterPodAffinity) PreFilter(_ context.Context, state *spec.CycleState, pod *corev1.Pod, snap spec.Snapshot) *spec.Status {
	pt, err := parsePod(pod)
	if err != nil {
		return spec.NewStatus(spec.UnschedulableAndUnresolvable, fmt.Sprintf("parsing pod: %v", err))
	}
	ns := newNSLabels(snap)
	own := len(pt.affinity) > 0 || len(pt.antiAffinity) > 0
	nodes := snap.Nodes()
	partial := make([]*filterState, pluginhelper.Workers(len(nodes)))
	existingBy := make([]bool, len(partial))
	withAffinity := make([][]*spec.NodeInfo, len(partial))
	pluginhelper.Chunks(len(nodes), func(w, lo, hi int) {
		s := &filterState{affinityCounts: map[pair]int64{}, antiCounts: map[pair]int64{}, existingAnti: map[pair]int64{}}
		partial[w] = s
		for _, ni := range nodes[lo:hi] {
			if len(podsWith(ni, ni.PodsWithAffinity)) > 0 {
				withAffinity[w] = append(withAffinity[w], ni)
			}
			antiPods := podsWith(ni, ni.PodsWithRequiredAntiAffinity)
			if (!own && len(antiPods) == 0) || ni.Node == nil {
				continue
			}
			nl := ni.Node.Labels
			for _, p := range antiPods {
				if !hasPodAffinity(p) {
					continue
				}
				for _, t := range pl.existingTerms(p).antiAffinity {
					existingBy[w] = true
					if v, ok := nl[t.TopologyKey]; ok && t.Matches(pod, ns.get) {
						s.existingAnti[pair{t.TopologyKey, v}]++
					}
				}
			}
			if !own {
				continue
			}
			for _, p := range ni.Pods {
				if len(pt.affinity) > 0 {
					all := true
					for i := range pt.affinity {
						if !pt.affinity[i].Matches(p, ns.get) {
							all = false
							break
						}
					}
					if all {
						for _, t := range pt.affinity {
							if v, ok := nl[t.TopologyKey]; ok {
								s.affinityCounts[pair{t.TopologyKey, v}]++
							}
						}
					}
				}
				for i := range pt.antiAffinity {
					t := &pt.antiAffinity[i]
					if v, ok := nl[t.TopologyKey]; ok && t.Matches(p, ns.get) {
						s.antiCounts[pair{t.TopologyKey, v}]++
					}
				}
			}
		}
	})
	s := &filterState{terms: pt, affinityCounts: map[pair]int64{}, antiCounts: map[pair]int64{}, existingAnti: map[pair]int64{}}
	existing := false
	for w, part := range partial {
		if part == nil {
			continue
		}
		existing = existing || existingBy[w]
		for k, v := range part.affinityCounts {
			s.affinityCounts[k] += v
		}
		for k, v := range part.antiCounts {
			s.antiCounts[k] += v
		}
		for k, v := range part.existingAnti {
			s.existingAnti[k] += v
		}
	}
	// PreScore visits only these nodes when the pod has no preferred
	// terms (upstream's HavePodsWithAffinityList).
	var affNodes []*spec.NodeInfo
	for _, l := range withAffinity {
		affNodes = append(affNodes, l...)
	}
	state.Write(affinityNodesKey, affNodes)
	if !own && !existing {
		return spec.NewStatus(spec.Skip)
	}
	s.selfMatch = true
	for i := range pt.affinity {
		if !pt.affinity[i].Matches(pod, ns.get) {
			s.selfMatch = false
		}
	}
	state.Write(preFilterKey, s)
	return nil
}

// Filter checks, in upstream's order: the pod's required affinity
// (UnschedulableAndUnresolvable, "node(s) didn't match pod affinity
// rules"), its required anti-affinity (Unschedulable, "… anti-affinity
// rules") and existing pods' required anti-affinity (Unschedulable,
// "node(s) didn't satisfy existing pods anti-affinity rules"). A pod whose
// affinity matches no pod anywhere may still go where its own labels
// satisfy its terms (the first pod of a group with affinity to itself).
func (pl *InterPodAffinity) Filter(_ context.Context, state *spec.CycleState, _ *corev1.Pod, node *spec.NodeInfo) *spec.Status {
	v, err := state.Read(preFilterKey)
	if err != nil {
		return spec.AsStatus(err)
	}
	s := v.(*filterState)
	if node.Node == nil {
		return spec.NewStatus(spec.UnschedulableAndUnresolvable, ErrReasonAffinityRulesNotMatch)
	}
	nl := node.Node.Labels
	if len(s.terms.affinity) > 0 {
		exist := true
		for _, t := range s.terms.affinity {
			val, ok := nl[t.TopologyKey]
			if !ok {
				return spec.NewStatus(spec.UnschedulableAndUnresolvable, ErrReasonAffinityRulesNotMatch)
			}
			if s.affinityCounts[pair{t.TopologyKey, val}] <= 0 {
				exist = false
			}
		}
		if !exist && !(len(s.affinityCounts) == 0 && s.selfMatch) {
			return spec.NewStatus(spec.UnschedulableAndUnresolvable, ErrReasonAffinityRulesNotMatch)
		}
	}
	for _, t := range s.terms.antiAffinity {
		if val, ok := nl[t.TopologyKey]; ok && s.antiCounts[pair{t.TopologyKey, val}] > 0 {
			return spec.NewStatus(spec.Unschedulable, ErrReasonAntiAffinityRulesNotMatch)
		}
	}
	for p, n := range s.existingAnti {
		if n > 0 && nl[p.key] == p.value {
			if _, ok := nl[p.key]; ok {
				return spec.NewStatus(spec.Unschedulable, ErrReasonExistingAntiAffinityRulesNotMatch)
			}
		}
	}
	return nil
}

// scoreState maps topology key → value → score.
type scoreState map[string]map[string]int64

func (s scoreState) add(key, value string, w int64) {
	m := s[key]
	if m == nil {
		m = map[string]int64{}
		s[key] = m
	}
	m[value] += w
}

// PreScore sums, per topology pair, the weights of: the incoming pod's
// preferred terms matched by existing pods (+ affinity, − anti-affinity),
// existing pods' preferred terms matched by the incoming pod (likewise),
// and existing pods' required affinity terms it matches
// (+hardPodAffinityWeight). It skips when nothing contributes.
func (pl *InterPodAffinity) PreScore(_ context.Context, state *spec.CycleState, pod *corev1.Pod, nodes []*spec.NodeInfo) *spec.Status {
	if pl.noScore {
		return spec.NewStatus(spec.Skip)
	}
	pt, err := parsePod(pod)
	if err != nil {
		return spec.AsStatus(err)
	}
	all := nodes
	var snap spec.Snapshot
	if pl.h != nil {
		snap = pl.h.Snapshot()
	}
	if snap != nil {
		all = snap.Nodes()
	} else {
		snap = spec.NewSnapshot(nodes)
	}
	ns := newNSLabels(snap)
	hasPref := len(pt.prefAffinity)+len(pt.prefAntiAffinity) > 0
	if !hasPref {
		if v, err := state.Read(affinityNodesKey); err == nil {
			all = v.([]*spec.NodeInfo)
		}
	}
	partial := make([]scoreState, pluginhelper.Workers(len(all)))
	pluginhelper.Chunks(len(all), func(w, lo, hi int) {
		partial[w] = pl.scoreNodes(pod, pt, hasPref, ns, all[lo:hi])
	})
	s := scoreState{}
	for _, part := range partial {
		for key, values := range part {
			for v, n := range values {
				s.add(key, v, n)
			}
		}
	}
	if len(s) == 0 {
		return spec.NewStatus(spec.Skip)
	}
	state.Write(preScoreKey, s)
	return nil
}

// scoreNodes is PreScore's work over some of the nodes.
func (pl *InterPodAffinity) scoreNodes(pod *corev1.Pod, pt *podTerms, hasPref bool, ns *nsLabels, nodes []*spec.NodeInfo) scoreState {
	s := scoreState{}
	for _, ni := range nodes {
		pods := ni.Pods
		if !hasPref {
			pods = podsWith(ni, ni.PodsWithAffinity)
		}
		if len(pods) == 0 || ni.Node == nil || len(ni.Node.Labels) == 0 {
			continue
		}
		nl := ni.Node.Labels
		for _, p := range pods {
			withAff := hasPodAffinity(p)
			if !hasPref && !withAff {
				continue
			}
			for _, t := range pt.prefAffinity {
				if v, ok := nl[t.TopologyKey]; ok && t.Matches(p, ns.get) {
					s.add(t.TopologyKey, v, t.Weight)
				}
			}
			for _, t := range pt.prefAntiAffinity {
				if v, ok := nl[t.TopologyKey]; ok && t.Matches(p, ns.get) {
					s.add(t.TopologyKey, v, -t.Weight)
				}
			}
			if !withAff {
				continue
			}
			et := pl.existingTerms(p)
			if pl.hardWeight > 0 {
				for _, t := range et.affinity {
					if v, ok := nl[t.TopologyKey]; ok && t.Matches(pod, ns.get) {
						s.add(t.TopologyKey, v, pl.hardWeight)
					}
				}
			}
			for _, t := range et.prefAffinity {
				if v, ok := nl[t.TopologyKey]; ok && t.Matches(pod, ns.get) {
					s.add(t.TopologyKey, v, t.Weight)
				}
			}
			for _, t := range et.prefAntiAffinity {
				if v, ok := nl[t.TopologyKey]; ok && t.Matches(pod, ns.get) {
					s.add(t.TopologyKey, v, -t.Weight)
				}
			}
		}
	}
	return s
}

// Score sums the node's topology pairs' scores.
func (pl *InterPodAffinity) Score(_ context.Context, state *spec.CycleState, _ *corev1.Pod, node *spec.NodeInfo) (int64, *spec.Status) {
	v, err := state.Read(preScoreKey)
	if err != nil {
		return 0, spec.AsStatus(err)
	}
	if node.Node == nil {
		return 0, nil
	}
	var score int64
	for key, values := range v.(scoreState) {
		if val, ok := node.Node.Labels[key]; ok {
			score += values[val]
		}
	}
	return score, nil
}

// NormalizeScore maps the scores linearly from [min, max] onto
// 0..MaxNodeScore (all 0 when they are equal).
func (pl *InterPodAffinity) NormalizeScore(_ context.Context, _ *spec.CycleState, _ *corev1.Pod, scores []spec.NodeScore) *spec.Status {
	if len(scores) == 0 {
		return nil
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, s := range scores {
		lo, hi = min(lo, s.Score), max(hi, s.Score)
	}
	diff := hi - lo
	for i := range scores {
		if diff > 0 {
			scores[i].Score = int64(float64(spec.MaxNodeScore) * float64(scores[i].Score-lo) / float64(diff))
		} else {
			scores[i].Score = 0
		}
	}
	return nil
}
