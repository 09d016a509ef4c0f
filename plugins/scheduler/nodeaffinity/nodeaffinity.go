// Package nodeaffinity is the NodeAffinity scheduler plugin: Filter
// enforces the pod's nodeSelector and required node affinity; Score sums
// the weights of the preferred node affinity terms a node matches.
package nodeaffinity

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
	"github.com/kubelab/kubelab/spec"
)

// NodeAffinity implements these extension points (checked at compile time).
var (
	_ spec.PreFilterPlugin = NodeAffinity{}
	_ spec.FilterPlugin    = NodeAffinity{}
	_ spec.PreScorePlugin  = NodeAffinity{}
	_ spec.ScorePlugin     = NodeAffinity{}
)

// Name is the plugin's registry name, as upstream.
const Name = "NodeAffinity"

// ErrReasonPod is the Filter's reason, as upstream.
const ErrReasonPod = "node(s) didn't match Pod's node affinity/selector"

const (
	preFilterKey = "PreFilter" + Name
	preScoreKey  = "PreScore" + Name
)

// Plugin returns the registry entry.
func Plugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{Name: Name, Description: "Filter: nodeSelector and required node affinity; Score: preferred node affinity weights", New: New}
}

// NodeAffinity implements spec.PreFilterPlugin, spec.FilterPlugin,
// spec.PreScorePlugin and spec.ScorePlugin.
type NodeAffinity struct{ noScore bool }

// New builds the plugin; its one arg is score=false (filter only).
func New(args map[string]string, _ spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(Name, args, pluginhelper.ArgScore); err != nil {
		return nil, err
	}
	score, err := pluginhelper.ScoreEnabled(Name, args)
	if err != nil {
		return nil, err
	}
	return NodeAffinity{noScore: !score}, nil
}

// Name implements spec.Named.
func (NodeAffinity) Name() string { return Name }

// PreFilter parses the pod's nodeSelector and required node affinity once;
// a pod with neither skips Filter.
func (NodeAffinity) PreFilter(_ context.Context, state *spec.CycleState, pod *corev1.Pod, _ spec.Snapshot) *spec.Status {
	aff := pod.Spec.Affinity
	hasRequired := aff != nil && aff.NodeAffinity != nil && aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil
	if len(pod.Spec.NodeSelector) == 0 && !hasRequired {
		return spec.NewStatus(spec.Skip)
	}
	req := nodeaffinity.GetRequiredNodeAffinity(pod)
	state.Write(preFilterKey, &req)
	return nil
}

// Filter rejects, as UnschedulableAndUnresolvable, a node that does not
// match the pod's nodeSelector or required node affinity.
func (NodeAffinity) Filter(_ context.Context, state *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) *spec.Status {
	var req nodeaffinity.RequiredNodeAffinity
	if v, err := state.Read(preFilterKey); err == nil {
		req = *v.(*nodeaffinity.RequiredNodeAffinity)
	} else {
		req = nodeaffinity.GetRequiredNodeAffinity(pod)
	}
	if node.Node == nil {
		return spec.NewStatus(spec.UnschedulableAndUnresolvable, ErrReasonPod)
	}
	ok, err := req.Match(node.Node)
	if err != nil {
		return spec.AsStatus(err)
	}
	if !ok {
		return spec.NewStatus(spec.UnschedulableAndUnresolvable, ErrReasonPod)
	}
	return nil
}

// PreScore parses the pod's preferred node affinity terms; a pod without
// any skips Score.
func (pl NodeAffinity) PreScore(_ context.Context, state *spec.CycleState, pod *corev1.Pod, _ []*spec.NodeInfo) *spec.Status {
	aff := pod.Spec.Affinity
	if pl.noScore || aff == nil || aff.NodeAffinity == nil || len(aff.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		return spec.NewStatus(spec.Skip)
	}
	terms, err := nodeaffinity.NewPreferredSchedulingTerms(aff.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
	if err != nil {
		return spec.AsStatus(err)
	}
	state.Write(preScoreKey, terms)
	return nil
}

// Score sums the weights of the preferred terms the node matches.
func (NodeAffinity) Score(_ context.Context, state *spec.CycleState, _ *corev1.Pod, node *spec.NodeInfo) (int64, *spec.Status) {
	v, err := state.Read(preScoreKey)
	if err != nil {
		return 0, spec.AsStatus(err)
	}
	if node.Node == nil {
		return 0, nil
	}
	return v.(*nodeaffinity.PreferredSchedulingTerms).Score(node.Node), nil
}

// NormalizeScore scales the sums so the best node gets MaxNodeScore.
func (NodeAffinity) NormalizeScore(_ context.Context, _ *spec.CycleState, _ *corev1.Pod, scores []spec.NodeScore) *spec.Status {
	pluginhelper.DefaultNormalizeScore(spec.MaxNodeScore, false, scores)
	return nil
}
