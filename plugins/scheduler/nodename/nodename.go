// Package nodename is the NodeName scheduler plugin: a pod that names its
// node in spec.nodeName fits only that node.
package nodename

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
	"github.com/kubelab/kubelab/spec"
)

// NodeName implements these extension points (checked at compile time).
var (
	_ spec.FilterPlugin = NodeName{}
)

// Name is the plugin's registry name, as upstream.
const Name = "NodeName"

// ErrReason is the Filter's reason, as upstream.
const ErrReason = "node(s) didn't match the requested node name"

// Plugin returns the registry entry.
func Plugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{Name: Name, Description: "Filter: a pod with spec.nodeName fits only that node", New: New}
}

// NodeName implements spec.FilterPlugin.
type NodeName struct{}

// New builds the plugin; it takes no args.
func New(args map[string]string, _ spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(Name, args); err != nil {
		return nil, err
	}
	return NodeName{}, nil
}

// Name implements spec.Named.
func (NodeName) Name() string { return Name }

// Filter rejects every node but the one the pod names, as
// UnschedulableAndUnresolvable (preemption cannot help).
func (NodeName) Filter(_ context.Context, _ *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) *spec.Status {
	if pod.Spec.NodeName == "" || pod.Spec.NodeName == node.Name() {
		return nil
	}
	return spec.NewStatus(spec.UnschedulableAndUnresolvable, ErrReason)
}
