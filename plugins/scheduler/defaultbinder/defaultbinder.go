// Package defaultbinder is the DefaultBinder scheduler plugin: it binds the
// pod through the scheduler's handle (a Binding on pods/binding).
package defaultbinder

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
	"github.com/kubelab/kubelab/spec"
)

// DefaultBinder implements these extension points (checked at compile time).
var (
	_ spec.BindPlugin = (*DefaultBinder)(nil)
)

// Name is the plugin's registry name, as upstream.
const Name = "DefaultBinder"

// Plugin returns the registry entry.
func Plugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{Name: Name, Description: "Bind: creates the pod's Binding through the API", New: New}
}

// DefaultBinder implements spec.BindPlugin.
type DefaultBinder struct{ h spec.SchedulerHandle }

// New builds the plugin; it takes no args. Bind needs a handle; without
// one (nil h) every Bind fails.
func New(args map[string]string, h spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(Name, args); err != nil {
		return nil, err
	}
	return &DefaultBinder{h: h}, nil
}

// Name implements spec.Named.
func (*DefaultBinder) Name() string { return Name }

// Bind binds pod to nodeName with the handle; a failure is an Error status.
func (b *DefaultBinder) Bind(ctx context.Context, _ *spec.CycleState, pod *corev1.Pod, nodeName string) *spec.Status {
	if b.h == nil {
		return spec.AsStatus(fmt.Errorf("%s: no scheduler handle to bind pod %s/%s with: %w", Name, pod.Namespace, pod.Name, spec.ErrInvalid))
	}
	if err := b.h.Bind(ctx, pod, nodeName); err != nil {
		return spec.AsStatus(fmt.Errorf("binding pod %s/%s to node %s: %w", pod.Namespace, pod.Name, nodeName, err))
	}
	return nil
}
