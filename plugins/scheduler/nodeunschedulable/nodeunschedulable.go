// Package nodeunschedulable is the NodeUnschedulable scheduler plugin: a
// cordoned node (spec.unschedulable) takes only pods that tolerate the
// node.kubernetes.io/unschedulable:NoSchedule taint.
package nodeunschedulable

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
	"github.com/kubelab/kubelab/spec"
)

// NodeUnschedulable implements these extension points (checked at compile time).
var (
	_ spec.FilterPlugin = NodeUnschedulable{}
)

// Name is the plugin's registry name, as upstream.
const Name = "NodeUnschedulable"

// Failure reasons, as upstream.
const (
	ErrReasonUnknownCondition = "node(s) had unknown conditions"
	ErrReasonUnschedulable    = "node(s) were unschedulable"
)

// Plugin returns the registry entry.
func Plugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{Name: Name, Description: "Filter: cordoned nodes take only pods tolerating node.kubernetes.io/unschedulable", New: New}
}

// NodeUnschedulable implements spec.FilterPlugin.
type NodeUnschedulable struct{}

// New builds the plugin; it takes no args.
func New(args map[string]string, _ spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(Name, args); err != nil {
		return nil, err
	}
	return NodeUnschedulable{}, nil
}

// Name implements spec.Named.
func (NodeUnschedulable) Name() string { return Name }

var unschedulableTaint = corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}

// Filter rejects a cordoned node, as UnschedulableAndUnresolvable, unless
// the pod tolerates the unschedulable taint.
func (NodeUnschedulable) Filter(_ context.Context, _ *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) *spec.Status {
	if node.Node == nil {
		return spec.NewStatus(spec.UnschedulableAndUnresolvable, ErrReasonUnknownCondition)
	}
	if !node.Node.Spec.Unschedulable {
		return nil
	}
	if corev1helpers.TolerationsTolerateTaint(pluginhelper.Logger, pod.Spec.Tolerations, &unschedulableTaint, false) {
		return nil
	}
	return spec.NewStatus(spec.UnschedulableAndUnresolvable, ErrReasonUnschedulable)
}
