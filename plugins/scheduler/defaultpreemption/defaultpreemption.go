// Package defaultpreemption is the DefaultPreemption scheduler plugin: when
// no node fits a pod, it looks for a node where evicting lower-priority
// pods would make room, picks the victims and the node as the
// kube-scheduler does, asks the scheduler to preempt them
// (SchedulerHandle.Preempt) and nominates the node.
//
// Per candidate node (one rejected as Unschedulable, not
// UnschedulableAndUnresolvable): remove every pod of lower priority than
// the preemptor; if the profile's filters (SchedulerHandle.RunFilterPlugins
// on a copy of the snapshot) then pass, add the removed pods back one by
// one, most important first and those whose eviction would violate a
// PodDisruptionBudget before the others, keeping each that still lets the
// preemptor fit; the rest are the victims. The chosen node has, in order:
// the fewest PDB violations, the lowest highest-victim priority, the lowest
// sum of victim priorities, the fewest victims, the latest start among its
// highest-priority victims, then the first in name order.
package defaultpreemption

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
	"github.com/kubelab/kubelab/spec"
)

// DefaultPreemption implements these extension points (checked at compile time).
var (
	_ spec.PostFilterPlugin = (*DefaultPreemption)(nil)
)

// Name is the plugin's registry name, as upstream.
const Name = "DefaultPreemption"

// Reasons of the PostFilter's failures.
const (
	ReasonPreemptNever = "not eligible due to preemptionPolicy=Never."
	ReasonTerminating  = "not eligible due to a terminating pod on the nominated node."
	ReasonNoVictims    = "No preemption victims found for incoming pod"
	ReasonNotHelpful   = "Preemption is not helpful for scheduling"
	ReasonGated        = "not eligible while the pod has scheduling gates."
)

// Args bounding how many candidate nodes are evaluated, as upstream's
// DefaultPreemptionArgs: at least minCandidateNodesPercentage of the nodes
// (default 10) and at least minCandidateNodesAbsolute (default 100).
const (
	ArgMinCandidateNodesPercentage = "minCandidateNodesPercentage"
	ArgMinCandidateNodesAbsolute   = "minCandidateNodesAbsolute"
)

// Plugin returns the registry entry.
func Plugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{Name: Name, Description: "PostFilter: preempt the fewest lowest-priority pods, honouring PodDisruptionBudgets", New: New}
}

// DefaultPreemption implements spec.PostFilterPlugin.
type DefaultPreemption struct {
	h                  spec.SchedulerHandle
	minPercent, minAbs int
}

// New builds the plugin from its args (minCandidateNodesPercentage 0..100,
// minCandidateNodesAbsolute ≥ 0, not both 0). PostFilter needs the handle;
// without one it declines to preempt.
func New(args map[string]string, h spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(Name, args, ArgMinCandidateNodesPercentage, ArgMinCandidateNodesAbsolute); err != nil {
		return nil, err
	}
	pl := &DefaultPreemption{h: h, minPercent: 10, minAbs: 100}
	for key, dst := range map[string]*int{ArgMinCandidateNodesPercentage: &pl.minPercent, ArgMinCandidateNodesAbsolute: &pl.minAbs} {
		s, ok := args[key]
		if !ok {
			continue
		}
		var v int
		if _, err := fmt.Sscanf(s, "%d", &v); err != nil || v < 0 || (key == ArgMinCandidateNodesPercentage && v > 100) {
			return nil, fmt.Errorf("scheduler plugin %s: %s=%q: %w", Name, key, s, spec.ErrInvalid)
		}
		*dst = v
	}
	if pl.minPercent == 0 && pl.minAbs == 0 {
		return nil, fmt.Errorf("scheduler plugin %s: %s and %s cannot both be 0: %w", Name, ArgMinCandidateNodesPercentage, ArgMinCandidateNodesAbsolute, spec.ErrInvalid)
	}
	return pl, nil
}

// Name implements spec.Named.
func (*DefaultPreemption) Name() string { return Name }

// candidate is a node where preemption would make room.
type candidate struct {
	node          string
	victims       []*corev1.Pod
	pdbViolations int
}

// PostFilter finds victims and a node for pod, preempts them through the
// handle and returns the node to nominate. When preemption cannot help it
// returns an Unschedulable status saying why.
func (pl *DefaultPreemption) PostFilter(ctx context.Context, _ *spec.CycleState, pod *corev1.Pod, snap spec.Snapshot, filtered map[string]*spec.Status) (string, *spec.Status) {
	if pl.h == nil {
		return "", spec.NewStatus(spec.Unschedulable, "preemption: no scheduler handle")
	}
	if ok, why := eligible(pod, snap, filtered); !ok {
		return "", spec.NewStatus(spec.Unschedulable, "preemption: "+why)
	}
	c, notHelpful, noVictims, err := pl.findCandidate(ctx, pod, snap, filtered)
	if err != nil {
		return "", spec.AsStatus(err)
	}
	if c == nil {
		var parts []string
		if noVictims > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", noVictims, ReasonNoVictims))
		}
		if notHelpful > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", notHelpful, ReasonNotHelpful))
		}
		sort.Strings(parts)
		return "", spec.NewStatus(spec.Unschedulable, fmt.Sprintf("preemption: 0/%d nodes are available: %s.", len(snap.Nodes()), strings.Join(parts, ", ")))
	}
	if err := pl.h.Preempt(ctx, pod, c.node, c.victims); err != nil {
		return "", spec.AsStatus(fmt.Errorf("preempting %d pod(s) on node %s for pod %s/%s: %w", len(c.victims), c.node, pod.Namespace, pod.Name, err))
	}
	return c.node, nil
}

func eligible(pod *corev1.Pod, snap spec.Snapshot, filtered map[string]*spec.Status) (bool, string) {
	if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy == corev1.PreemptNever {
		return false, ReasonPreemptNever
	}
	if len(pod.Spec.SchedulingGates) > 0 {
		return false, ReasonGated
	}
	nom := pod.Status.NominatedNodeName
	if nom == "" {
		return true, ""
	}
	if st := filtered[nom]; st != nil && st.Code == spec.UnschedulableAndUnresolvable {
		return true, ""
	}
	ni, err := snap.Get(nom)
	if err != nil {
		return true, ""
	}
	prio := corev1helpers.PodPriority(pod)
	for _, p := range ni.Pods {
		if corev1helpers.PodPriority(p) < prio && terminatingByPreemption(p) {
			return false, ReasonTerminating
		}
	}
	return true, ""
}

func terminatingByPreemption(p *corev1.Pod) bool {
	if p.DeletionTimestamp == nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == "PreemptionByScheduler" {
			return true
		}
	}
	return false
}

// findCandidate evaluates nodes until it has enough candidates and picks
// one; with none, it counts the nodes where preemption cannot help
// (unresolvable) and those without victims that would make room.
func (pl *DefaultPreemption) findCandidate(ctx context.Context, pod *corev1.Pod, snap spec.Snapshot, filtered map[string]*spec.Status) (c *candidate, notHelpful, noVictims int, err error) {
	nodes := snap.Nodes()
	want := len(nodes) * pl.minPercent / 100
	want = max(want, pl.minAbs)
	want = min(want, len(nodes))
	pdbs := pl.h.PodDisruptionBudgets()
	prio := corev1helpers.PodPriority(pod)
	var cands []*candidate
	for _, ni := range nodes {
		if len(cands) >= want {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, 0, err
		}
		if st := filtered[ni.Name()]; st != nil && st.Code == spec.UnschedulableAndUnresolvable {
			notHelpful++
			continue
		}
		if c := pl.selectVictims(ctx, pod, prio, snap, ni, pdbs); c != nil {
			cands = append(cands, c)
		} else {
			noVictims++
		}
	}
	if len(cands) == 0 {
		return nil, notHelpful, noVictims, nil
	}
	return pick(cands), 0, 0, nil
}

// selectVictims returns the victims on node ni, or nil when removing every
// lower-priority pod would not make the pod fit.
func (pl *DefaultPreemption) selectVictims(ctx context.Context, pod *corev1.Pod, prio int32, snap spec.Snapshot, ni *spec.NodeInfo, pdbs []*policyv1.PodDisruptionBudget) *candidate {
	var potential []*corev1.Pod
	for _, p := range ni.Pods {
		if corev1helpers.PodPriority(p) < prio {
			potential = append(potential, p)
		}
	}
	if len(potential) == 0 {
		return nil
	}
	clone := ni.Clone()
	for _, p := range potential {
		if err := clone.RemovePod(p); err != nil {
			return nil
		}
	}
	over := &overlay{Snapshot: snap, node: clone}
	if st := pl.h.RunFilterPlugins(ctx, pod, over, ni.Name()); !st.IsSuccess() {
		return nil
	}
	sort.SliceStable(potential, func(i, j int) bool { return pluginhelper.MoreImportant(potential[i], potential[j]) })
	violating, fine := pluginhelper.SplitByPDB(potential, pdbs)
	c := &candidate{node: ni.Name()}
	reprieve := func(p *corev1.Pod, violates bool) {
		clone.AddPod(p)
		if st := pl.h.RunFilterPlugins(ctx, pod, over, ni.Name()); !st.IsSuccess() {
			_ = clone.RemovePod(p)
			c.victims = append(c.victims, p)
			if violates {
				c.pdbViolations++
			}
		}
	}
	for _, p := range violating {
		reprieve(p, true)
	}
	for _, p := range fine {
		reprieve(p, false)
	}
	if len(c.victims) == 0 {
		return nil
	}
	return c
}

// pick chooses among candidates by upstream's criteria.
func pick(cands []*candidate) *candidate {
	type key struct {
		violations  int
		highest     int64
		sum         int64
		count       int
		latestStart time.Time
	}
	keyOf := func(c *candidate) key {
		k := key{violations: c.pdbViolations, highest: math.MinInt64, count: len(c.victims)}
		for _, v := range c.victims {
			p := int64(corev1helpers.PodPriority(v))
			k.highest = max(k.highest, p)
			// Shifted so negative priorities add up sensibly, as upstream.
			k.sum += p + math.MaxInt32 + 1
		}
		var earliest time.Time
		for _, v := range c.victims {
			if int64(corev1helpers.PodPriority(v)) != k.highest {
				continue
			}
			if t := pluginhelper.PodStartTime(v); earliest.IsZero() || t.Before(earliest) {
				earliest = t
			}
		}
		k.latestStart = earliest
		return k
	}
	best, bk := cands[0], keyOf(cands[0])
	for _, c := range cands[1:] {
		k := keyOf(c)
		better := false
		switch {
		case k.violations != bk.violations:
			better = k.violations < bk.violations
		case k.highest != bk.highest:
			better = k.highest < bk.highest
		case k.sum != bk.sum:
			better = k.sum < bk.sum
		case k.count != bk.count:
			better = k.count < bk.count
		case !k.latestStart.Equal(bk.latestStart):
			better = k.latestStart.After(bk.latestStart)
		}
		if better {
			best, bk = c, k
		}
	}
	return best
}

// overlay is a Snapshot with one node replaced by a copy that
// selectVictims modifies in place.
type overlay struct {
	spec.Snapshot
	node  *spec.NodeInfo
	nodes []*spec.NodeInfo
}

// Nodes lists the base snapshot's nodes with the replaced one swapped in.
func (o *overlay) Nodes() []*spec.NodeInfo {
	if o.nodes == nil {
		base := o.Snapshot.Nodes()
		o.nodes = make([]*spec.NodeInfo, len(base))
		for i, n := range base {
			if n.Name() == o.node.Name() {
				n = o.node
			}
			o.nodes[i] = n
		}
	}
	return o.nodes
}

// Get returns the replaced node's copy, or the base snapshot's node.
func (o *overlay) Get(name string) (*spec.NodeInfo, error) {
	if name == o.node.Name() {
		return o.node, nil
	}
	return o.Snapshot.Get(name)
}

// NamespaceLabels forwards to the base snapshot when it knows namespaces.
func (o *overlay) NamespaceLabels(name string) (map[string]string, bool) {
	if l, ok := o.Snapshot.(spec.NamespaceLabeler); ok {
		return l.NamespaceLabels(name)
	}
	return nil, false
}
