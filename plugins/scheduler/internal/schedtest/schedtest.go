// Package schedtest builds nodes, pods and snapshots for the scheduler
// plugins' tests, and a fake spec.SchedulerHandle.
package schedtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/kubelab/kubelab/spec"
)

// NodeWrapper builds a Node.
type NodeWrapper struct{ corev1.Node }

// MakeNode returns a node called name with 110 allocatable pods.
func MakeNode(name string) *NodeWrapper {
	n := &NodeWrapper{corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}}}}
	n.Status.Allocatable = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110")}
	return n
}

// Label sets a label.
func (n *NodeWrapper) Label(k, v string) *NodeWrapper { n.Labels[k] = v; return n }

// Alloc sets allocatable quantities as name, value pairs.
func (n *NodeWrapper) Alloc(kv ...string) *NodeWrapper {
	for i := 0; i+1 < len(kv); i += 2 {
		n.Status.Allocatable[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return n
}

// Taint adds a taint.
func (n *NodeWrapper) Taint(k, v string, e corev1.TaintEffect) *NodeWrapper {
	n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: k, Value: v, Effect: e})
	return n
}

// Unschedulable marks the node cordoned.
func (n *NodeWrapper) Unschedulable() *NodeWrapper { n.Spec.Unschedulable = true; return n }

// Obj returns the node.
func (n *NodeWrapper) Obj() *corev1.Node { c := n.Node; return &c }

// PodWrapper builds a Pod.
type PodWrapper struct{ corev1.Pod }

// MakePod returns a pod in namespace "default" with one empty container.
func MakePod(name string) *PodWrapper {
	p := &PodWrapper{corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: k8stypes.UID("uid-" + name), Labels: map[string]string{}}}}
	p.Spec.Containers = []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{}}}}
	return p
}

// Namespace sets the namespace.
func (p *PodWrapper) Namespace(ns string) *PodWrapper { p.Pod.Namespace = ns; return p }

// Label sets a label.
func (p *PodWrapper) Label(k, v string) *PodWrapper { p.Labels[k] = v; return p }

// Req adds container requests as name, value pairs.
func (p *PodWrapper) Req(kv ...string) *PodWrapper {
	for i := 0; i+1 < len(kv); i += 2 {
		p.Spec.Containers[0].Resources.Requests[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return p
}

// InitReq adds an init container with these requests.
func (p *PodWrapper) InitReq(kv ...string) *PodWrapper {
	c := corev1.Container{Name: "init", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{}}}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Resources.Requests[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	return p
}

// Overhead sets the pod overhead.
func (p *PodWrapper) Overhead(kv ...string) *PodWrapper {
	p.Spec.Overhead = corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		p.Spec.Overhead[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return p
}

// HostPort adds a host port to the first container.
func (p *PodWrapper) HostPort(proto corev1.Protocol, ip string, port int32) *PodWrapper {
	p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{ContainerPort: port, HostPort: port, HostIP: ip, Protocol: proto})
	return p
}

// Node sets spec.nodeName.
func (p *PodWrapper) Node(n string) *PodWrapper { p.Spec.NodeName = n; return p }

// Priority sets spec.priority.
func (p *PodWrapper) Priority(v int32) *PodWrapper { p.Spec.Priority = &v; return p }

// Created sets the creation timestamp to the Unix second sec.
func (p *PodWrapper) Created(sec int64) *PodWrapper {
	p.CreationTimestamp = metav1.NewTime(time.Unix(sec, 0))
	return p
}

// NodeSelector sets a nodeSelector entry.
func (p *PodWrapper) NodeSelector(k, v string) *PodWrapper {
	if p.Spec.NodeSelector == nil {
		p.Spec.NodeSelector = map[string]string{}
	}
	p.Spec.NodeSelector[k] = v
	return p
}

// Toleration adds a toleration.
func (p *PodWrapper) Toleration(k string, op corev1.TolerationOperator, v string, e corev1.TaintEffect) *PodWrapper {
	p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: k, Operator: op, Value: v, Effect: e})
	return p
}

// Affinity returns the pod's affinity, creating it.
func (p *PodWrapper) Affinity() *corev1.Affinity {
	if p.Spec.Affinity == nil {
		p.Spec.Affinity = &corev1.Affinity{}
	}
	return p.Spec.Affinity
}

// Spread adds a topology spread constraint selecting label k=v.
func (p *PodWrapper) Spread(maxSkew int32, key string, when corev1.UnsatisfiableConstraintAction, k, v string) *PodWrapper {
	p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, corev1.TopologySpreadConstraint{
		MaxSkew: maxSkew, TopologyKey: key, WhenUnsatisfiable: when,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{k: v}},
	})
	return p
}

// Obj returns the pod.
func (p *PodWrapper) Obj() *corev1.Pod { c := p.Pod; return &c }

// Term is a pod affinity term selecting label k=v over topology key.
func Term(key, k, v string) corev1.PodAffinityTerm {
	return corev1.PodAffinityTerm{TopologyKey: key, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}}
}

// Snapshot builds NodeInfos for nodes, placing each pod on the node named
// by its spec.nodeName.
func Snapshot(nodes []*corev1.Node, pods ...*corev1.Pod) spec.Snapshot {
	infos := make([]*spec.NodeInfo, 0, len(nodes))
	byName := map[string]*spec.NodeInfo{}
	for _, n := range nodes {
		ni := spec.NewNodeInfo(n)
		infos = append(infos, ni)
		byName[n.Name] = ni
	}
	for _, p := range pods {
		if ni := byName[p.Spec.NodeName]; ni != nil {
			ni.AddPod(p)
		}
	}
	return spec.NewSnapshot(infos)
}

// Preemption is one call to Handle.Preempt.
type Preemption struct {
	Preemptor string
	Node      string
	Victims   []string
}

// Handle is a fake spec.SchedulerHandle: it serves a snapshot and PDBs,
// records preemptions and bindings, and runs the given filter plugins.
type Handle struct {
	Snap    spec.Snapshot
	PDBs    []*policyv1.PodDisruptionBudget
	Filters []spec.Named

	mu          sync.Mutex
	Preemptions []Preemption
	Bindings    map[string]string
	BindErr     error
}

// Snapshot implements spec.SchedulerHandle.
func (h *Handle) Snapshot() spec.Snapshot { return h.Snap }

// PodDisruptionBudgets implements spec.SchedulerHandle.
func (h *Handle) PodDisruptionBudgets() []*policyv1.PodDisruptionBudget { return h.PDBs }

// Preempt implements spec.SchedulerHandle by recording the call.
func (h *Handle) Preempt(_ context.Context, preemptor *corev1.Pod, nodeName string, victims []*corev1.Pod) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	pr := Preemption{Preemptor: preemptor.Name, Node: nodeName}
	for _, v := range victims {
		pr.Victims = append(pr.Victims, v.Name)
	}
	h.Preemptions = append(h.Preemptions, pr)
	return nil
}

// Bind implements spec.SchedulerHandle by recording the binding.
func (h *Handle) Bind(_ context.Context, pod *corev1.Pod, nodeName string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.BindErr != nil {
		return h.BindErr
	}
	if h.Bindings == nil {
		h.Bindings = map[string]string{}
	}
	h.Bindings[pod.Name] = nodeName
	return nil
}

// RunFilterPlugins implements spec.SchedulerHandle over Filters, as the
// framework does: PreFilter (Skip skips the plugin's Filter), then Filter.
func (h *Handle) RunFilterPlugins(ctx context.Context, pod *corev1.Pod, snap spec.Snapshot, nodeName string) *spec.Status {
	ni, err := snap.Get(nodeName)
	if err != nil {
		return spec.AsStatus(err)
	}
	state := &spec.CycleState{}
	for _, pl := range h.Filters {
		if pf, ok := pl.(spec.PreFilterPlugin); ok {
			st := pf.PreFilter(ctx, state, pod, snap)
			if st.IsSkip() {
				continue
			}
			if !st.IsSuccess() {
				return st
			}
		}
		if f, ok := pl.(spec.FilterPlugin); ok {
			if st := f.Filter(ctx, state, pod, ni); !st.IsSuccess() {
				return st
			}
		}
	}
	return nil
}

// RunFilter runs pl's PreFilter (if any) and Filter for pod on node, with
// a fresh CycleState, as the framework would.
func RunFilter(pl spec.Named, pod *corev1.Pod, snap spec.Snapshot, node string) *spec.Status {
	h := &Handle{Filters: []spec.Named{pl}}
	return h.RunFilterPlugins(context.Background(), pod, snap, node)
}

// RunScore runs pl's PreScore (if any), Score on every node of snap, then
// NormalizeScore, and returns the normalized scores by node name. When
// PreScore returns Skip it returns nil.
func RunScore(pl spec.Named, pod *corev1.Pod, snap spec.Snapshot) map[string]int64 {
	ctx := context.Background()
	state := &spec.CycleState{}
	if pf, ok := pl.(spec.PreFilterPlugin); ok {
		_ = pf.PreFilter(ctx, state, pod, snap)
	}
	if ps, ok := pl.(spec.PreScorePlugin); ok {
		st := ps.PreScore(ctx, state, pod, snap.Nodes())
		if st.IsSkip() {
			return nil
		}
		if !st.IsSuccess() {
			panic(st.Message())
		}
	}
	sp := pl.(spec.ScorePlugin)
	var scores []spec.NodeScore
	for _, ni := range snap.Nodes() {
		s, st := sp.Score(ctx, state, pod, ni)
		if !st.IsSuccess() {
			panic(st.Message())
		}
		scores = append(scores, spec.NodeScore{Name: ni.Name(), Score: s})
	}
	if st := sp.NormalizeScore(ctx, state, pod, scores); !st.IsSuccess() {
		panic(st.Message())
	}
	out := map[string]int64{}
	for _, s := range scores {
		out[s.Name] = s.Score
	}
	return out
}

// AssertStatus fails t unless got and want have the same code and reasons.
func AssertStatus(t testing.TB, got, want *spec.Status) {
	t.Helper()
	if got.IsSuccess() && want.IsSuccess() {
		return
	}
	gc, wc := spec.Success, spec.Success
	if got != nil {
		gc = got.Code
	}
	if want != nil {
		wc = want.Code
	}
	if gc != wc || got.Message() != want.Message() {
		t.Errorf("status = %v %q, want %v %q", gc, got.Message(), wc, want.Message())
	}
}

// Framework is a minimal, sequential stand-in for the reference scheduler's
// framework, for tests and benchmarks of whole profiles: it runs a
// profile's plugins over a snapshot the way the contract describes.
type Framework struct {
	Plugins []spec.Named
	Weights []int64
	Handle  *Handle
}

// NewFramework builds every plugin of profile from the given registry
// entries, with h as their handle (h.Filters is set to the built plugins).
func NewFramework(profile spec.Profile, registry []spec.SchedulerPlugin, h *Handle) (*Framework, error) {
	byName := map[string]spec.SchedulerPlugin{}
	for _, p := range registry {
		byName[p.Name] = p
	}
	fw := &Framework{Handle: h}
	for _, wp := range profile.Plugins {
		p, ok := byName[wp.Name]
		if !ok {
			return nil, fmt.Errorf("plugin %q: %w", wp.Name, spec.ErrNotFound)
		}
		pl, err := p.New(wp.Args, h)
		if err != nil {
			return nil, err
		}
		w := wp.Weight
		if w == 0 {
			w = 1
		}
		fw.Plugins = append(fw.Plugins, pl)
		fw.Weights = append(fw.Weights, w)
	}
	h.Filters = fw.Plugins
	return fw, nil
}

// Result is the outcome of Framework.Schedule.
type Result struct {
	// Node is the chosen node, or "" when none fits.
	Node string
	// Filtered holds each rejected node's status.
	Filtered map[string]*spec.Status
	// Scores are the weighted total scores of the feasible nodes (kept
	// only when there are at most 100).
	Scores map[string]int64
}

// Schedule runs one scheduling cycle for pod over snap: PreFilter, Filter
// on every node, PreScore, Score, NormalizeScore, weighted sum; the highest
// total wins (ties: first by name). It runs no PostFilter and binds nothing.
func (fw *Framework) Schedule(ctx context.Context, pod *corev1.Pod, snap spec.Snapshot) (Result, error) {
	fw.Handle.Snap = snap
	state := &spec.CycleState{}
	res := Result{Filtered: map[string]*spec.Status{}, Scores: map[string]int64{}}
	skipFilter := map[string]bool{}
	for _, pl := range fw.Plugins {
		if pf, ok := pl.(spec.PreFilterPlugin); ok {
			st := pf.PreFilter(ctx, state, pod, snap)
			switch {
			case st.IsSkip():
				skipFilter[pl.Name()] = true
			case st.IsRejected():
				for _, ni := range snap.Nodes() {
					res.Filtered[ni.Name()] = st
				}
				return res, nil
			case !st.IsSuccess():
				return res, fmt.Errorf("PreFilter %s: %s", pl.Name(), st.Message())
			}
		}
	}
	var feasible []*spec.NodeInfo
	for _, ni := range snap.Nodes() {
		var rejected *spec.Status
		for _, pl := range fw.Plugins {
			f, ok := pl.(spec.FilterPlugin)
			if !ok || skipFilter[pl.Name()] {
				continue
			}
			if st := f.Filter(ctx, state, pod, ni); !st.IsSuccess() {
				if st.Code == spec.Error {
					return res, fmt.Errorf("Filter %s: %s", pl.Name(), st.Message())
				}
				rejected = st
				break
			}
		}
		if rejected != nil {
			res.Filtered[ni.Name()] = rejected
			continue
		}
		feasible = append(feasible, ni)
	}
	if len(feasible) == 0 {
		return res, nil
	}
	totals := make([]int64, len(feasible))
	for i, pl := range fw.Plugins {
		sp, ok := pl.(spec.ScorePlugin)
		if !ok {
			continue
		}
		if ps, ok := pl.(spec.PreScorePlugin); ok {
			st := ps.PreScore(ctx, state, pod, feasible)
			if st.IsSkip() {
				continue
			}
			if !st.IsSuccess() {
				return res, fmt.Errorf("PreScore %s: %s", pl.Name(), st.Message())
			}
		}
		scores := make([]spec.NodeScore, len(feasible))
		for j, ni := range feasible {
			s, st := sp.Score(ctx, state, pod, ni)
			if !st.IsSuccess() {
				return res, fmt.Errorf("Score %s: %s", pl.Name(), st.Message())
			}
			scores[j] = spec.NodeScore{Name: ni.Name(), Score: s}
		}
		if st := sp.NormalizeScore(ctx, state, pod, scores); !st.IsSuccess() {
			return res, fmt.Errorf("NormalizeScore %s: %s", pl.Name(), st.Message())
		}
		for j, s := range scores {
			if s.Score < spec.MinNodeScore || s.Score > spec.MaxNodeScore {
				return res, fmt.Errorf("plugin %s scored node %s %d, outside 0..%d", pl.Name(), s.Name, s.Score, spec.MaxNodeScore)
			}
			totals[j] += s.Score * fw.Weights[i]
		}
	}
	best := int64(-1)
	for j, ni := range feasible {
		if totals[j] > best {
			best, res.Node = totals[j], ni.Name()
		}
	}
	if len(feasible) <= 100 {
		for j, ni := range feasible {
			res.Scores[ni.Name()] = totals[j]
		}
	}
	return res, nil
}
