// Package queuesort is the PrioritySort scheduler plugin: the scheduling
// queue pops higher-priority pods first, and among equal priorities the
// older pod first.
package queuesort

import (
	corev1 "k8s.io/api/core/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
	"github.com/kubelab/kubelab/spec"
)

// PrioritySort implements these extension points (checked at compile time).
var (
	_ spec.QueueSortPlugin = PrioritySort{}
)

// Name is the plugin's registry name, as upstream.
const Name = "PrioritySort"

// Plugin returns the registry entry.
func Plugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{Name: Name, Description: "QueueSort: priority descending, then creation time", New: New}
}

// PrioritySort implements spec.QueueSortPlugin.
type PrioritySort struct{}

// New builds the plugin; it takes no args.
func New(args map[string]string, _ spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(Name, args); err != nil {
		return nil, err
	}
	return PrioritySort{}, nil
}

// Name implements spec.Named.
func (PrioritySort) Name() string { return Name }

// Less orders a before b when a has the higher spec.priority (unset is 0)
// or, at equal priority, the earlier timestamp. The kube-scheduler uses the
// time the pod entered the queue; the contract passes only pods, so kubelab
// uses metadata.creationTimestamp, and breaks remaining ties by
// namespace/name so the order is deterministic.
func (PrioritySort) Less(a, b *corev1.Pod) bool {
	pa, pb := corev1helpers.PodPriority(a), corev1helpers.PodPriority(b)
	if pa != pb {
		return pa > pb
	}
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}
