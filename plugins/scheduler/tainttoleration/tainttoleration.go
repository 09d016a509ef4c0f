// Package tainttoleration is the TaintToleration scheduler plugin: Filter
// rejects nodes with a NoSchedule or NoExecute taint the pod does not
// tolerate; Score prefers nodes with fewer untolerated PreferNoSchedule
// taints.
package tainttoleration

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
	"github.com/kubelab/kubelab/spec"
)

// TaintToleration implements these extension points (checked at compile time).
var (
	_ spec.FilterPlugin   = TaintToleration{}
	_ spec.PreScorePlugin = TaintToleration{}
	_ spec.ScorePlugin    = TaintToleration{}
)

// Name is the plugin's registry name, as upstream.
const Name = "TaintToleration"

const preScoreKey = "PreScore" + Name

// Plugin returns the registry entry.
func Plugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{Name: Name, Description: "Filter: untolerated NoSchedule/NoExecute taints; Score: fewer untolerated PreferNoSchedule taints", New: New}
}

// TaintToleration implements spec.FilterPlugin, spec.PreScorePlugin and
// spec.ScorePlugin.
type TaintToleration struct{ noScore bool }

// New builds the plugin; its one arg is score=false (filter only).
func New(args map[string]string, _ spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(Name, args, pluginhelper.ArgScore); err != nil {
		return nil, err
	}
	score, err := pluginhelper.ScoreEnabled(Name, args)
	if err != nil {
		return nil, err
	}
	return TaintToleration{noScore: !score}, nil
}

// Name implements spec.Named.
func (TaintToleration) Name() string { return Name }

// ErrReason formats the Filter's reason for an untolerated taint:
// "node(s) had untolerated taint {key: value}". (The kube-scheduler before
// v1.35 printed the taint this way; later versions print
// "node(s) had untolerated taint(s)". kubelab keeps the taint in the reason
// because it tells the user which toleration is missing.)
func ErrReason(t corev1.Taint) string {
	return fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)
}

func doNotSchedule(t *corev1.Taint) bool {
	return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
}

// Filter rejects, as UnschedulableAndUnresolvable, a node with a NoSchedule
// or NoExecute taint that none of the pod's tolerations tolerates.
func (TaintToleration) Filter(_ context.Context, _ *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) *spec.Status {
	if node.Node == nil || len(node.Node.Spec.Taints) == 0 {
		return nil
	}
	taint, untolerated := corev1helpers.FindMatchingUntoleratedTaint(pluginhelper.Logger, node.Node.Spec.Taints, pod.Spec.Tolerations, doNotSchedule, false)
	if !untolerated {
		return nil
	}
	return spec.NewStatus(spec.UnschedulableAndUnresolvable, ErrReason(taint))
}

// PreScore keeps the pod's tolerations that can tolerate PreferNoSchedule
// taints (effect PreferNoSchedule or empty).
func (pl TaintToleration) PreScore(_ context.Context, state *spec.CycleState, pod *corev1.Pod, _ []*spec.NodeInfo) *spec.Status {
	if pl.noScore {
		return spec.NewStatus(spec.Skip)
	}
	var tols []corev1.Toleration
	for _, t := range pod.Spec.Tolerations {
		if t.Effect == "" || t.Effect == corev1.TaintEffectPreferNoSchedule {
			tols = append(tols, t)
		}
	}
	state.Write(preScoreKey, tols)
	return nil
}

// Score counts the node's PreferNoSchedule taints the pod does not
// tolerate; NormalizeScore turns fewer into higher.
func (TaintToleration) Score(_ context.Context, state *spec.CycleState, _ *corev1.Pod, node *spec.NodeInfo) (int64, *spec.Status) {
	if node.Node == nil || len(node.Node.Spec.Taints) == 0 {
		return 0, nil
	}
	v, err := state.Read(preScoreKey)
	if err != nil {
		return 0, spec.AsStatus(err)
	}
	tols := v.([]corev1.Toleration)
	var n int64
	for i := range node.Node.Spec.Taints {
		t := &node.Node.Spec.Taints[i]
		if t.Effect != corev1.TaintEffectPreferNoSchedule {
			continue
		}
		if !corev1helpers.TolerationsTolerateTaint(pluginhelper.Logger, tols, t, false) {
			n++
		}
	}
	return n, nil
}

// NormalizeScore reverses the counts onto 0..MaxNodeScore.
func (TaintToleration) NormalizeScore(_ context.Context, _ *spec.CycleState, _ *corev1.Pod, scores []spec.NodeScore) *spec.Status {
	pluginhelper.DefaultNormalizeScore(spec.MaxNodeScore, true, scores)
	return nil
}
