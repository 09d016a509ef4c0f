// Package schedulinggates is the SchedulingGates scheduler plugin: a pod
// with spec.schedulingGates is not scheduled until they are all removed.
//
// The kube-scheduler checks gates at PreEnqueue, so a gated pod never
// enters the active queue and is reported with the PodScheduled reason
// "SchedulingGated". The contract has no PreEnqueue, so this plugin rejects
// a gated pod at PreFilter, before any node is looked at, with upstream's
// message; a scheduler that holds gated pods in its queue does not need it.
package schedulinggates

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
	"github.com/kubelab/kubelab/spec"
)

// SchedulingGates implements these extension points (checked at compile time).
var (
	_ spec.PreFilterPlugin = SchedulingGates{}
)

// Name is the plugin's registry name, as upstream.
const Name = "SchedulingGates"

// Plugin returns the registry entry.
func Plugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{Name: Name, Description: "PreFilter: pods with spec.schedulingGates wait until the gates are removed", New: New}
}

// SchedulingGates implements spec.PreFilterPlugin.
type SchedulingGates struct{}

// New builds the plugin; it takes no args.
func New(args map[string]string, _ spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(Name, args); err != nil {
		return nil, err
	}
	return SchedulingGates{}, nil
}

// Name implements spec.Named.
func (SchedulingGates) Name() string { return Name }

// PreFilter rejects a gated pod as UnschedulableAndUnresolvable ("waiting
// for scheduling gates: [a b]"); it skips (nothing to filter) otherwise.
func (SchedulingGates) PreFilter(_ context.Context, _ *spec.CycleState, pod *corev1.Pod, _ spec.Snapshot) *spec.Status {
	if len(pod.Spec.SchedulingGates) == 0 {
		return spec.NewStatus(spec.Skip)
	}
	gates := make([]string, 0, len(pod.Spec.SchedulingGates))
	for _, g := range pod.Spec.SchedulingGates {
		gates = append(gates, g.Name)
	}
	return spec.NewStatus(spec.UnschedulableAndUnresolvable, fmt.Sprintf("waiting for scheduling gates: %v", gates))
}
