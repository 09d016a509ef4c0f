package admission

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// RuntimeClassName is the RuntimeClass plugin's name.
const RuntimeClassName = "RuntimeClass"

// RuntimeClassGetter reads RuntimeClasses (node.k8s.io/v1). A missing
// class is an error for which apierrors.IsNotFound is true. Returned
// objects must not be modified.
type RuntimeClassGetter interface {
	GetRuntimeClass(ctx context.Context, name string) (*nodev1.RuntimeClass, error)
}

// RuntimeClass applies a pod's RuntimeClass, as upstream's RuntimeClass
// admission plugin. Only pod creates are concerned.
//
// Admit: a pod naming a RuntimeClass (spec.runtimeClassName, non-empty)
// that does not exist is 403 `pod rejected: RuntimeClass "x" not found`.
// From an existing class: overhead.podFixed becomes spec.overhead (403 when
// the pod already carries a different overhead); scheduling.nodeSelector
// is merged into spec.nodeSelector (403 on a key with another value);
// scheduling.tolerations missing from the pod are appended.
//
// Validate: a pod's spec.overhead must equal its class's
// overhead.podFixed; a pod with an overhead but no class, or a class
// without overhead, is 403 (the overhead is only ever set from a class).
type RuntimeClass struct {
	classes RuntimeClassGetter
}

var (
	_ MutatingPlugin   = (*RuntimeClass)(nil)
	_ ValidatingPlugin = (*RuntimeClass)(nil)
)

// NewRuntimeClass returns the plugin reading classes through g.
func NewRuntimeClass(g RuntimeClassGetter) *RuntimeClass { return &RuntimeClass{classes: g} }

// Name implements Plugin.
func (*RuntimeClass) Name() string { return RuntimeClassName }

// podCreate returns the pod of a pod create, or nil for any other request.
func podCreate(a *Attributes) (*corev1.Pod, error) {
	if a.Resource.Group != "" || a.Resource.Resource != "pods" || a.Subresource != "" || a.Operation != Create {
		return nil, nil
	}
	pod, ok := a.Object.(*corev1.Pod)
	if !ok {
		return nil, wrongType(a, a.Object)
	}
	return pod, nil
}

// class returns the pod's RuntimeClass, nil when it names none.
func (p *RuntimeClass) class(ctx context.Context, a *Attributes, pod *corev1.Pod) (*nodev1.RuntimeClass, error) {
	if pod.Spec.RuntimeClassName == nil || *pod.Spec.RuntimeClassName == "" {
		return nil, nil
	}
	rc, err := p.classes.GetRuntimeClass(ctx, *pod.Spec.RuntimeClassName)
	if apierrors.IsNotFound(err) {
		return nil, NewForbidden(a, fmt.Errorf("pod rejected: RuntimeClass %q not found", *pod.Spec.RuntimeClassName))
	}
	return rc, err
}

// Admit implements MutatingPlugin.
func (p *RuntimeClass) Admit(ctx context.Context, a *Attributes) error {
	pod, err := podCreate(a)
	if pod == nil || err != nil {
		return err
	}
	rc, err := p.class(ctx, a, pod)
	if rc == nil || err != nil {
		return err
	}
	if rc.Overhead != nil {
		if pod.Spec.Overhead != nil && !sameResources(pod.Spec.Overhead, rc.Overhead.PodFixed) {
			return NewForbidden(a, fmt.Errorf("pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"))
		}
		pod.Spec.Overhead = rc.Overhead.PodFixed.DeepCopy()
	}
	if s := rc.Scheduling; s != nil {
		for k, v := range s.NodeSelector {
			if have, ok := pod.Spec.NodeSelector[k]; ok && have != v {
				return NewForbidden(a, fmt.Errorf("conflict: runtimeClass.scheduling.nodeSelector[%s] = %s; pod.spec.nodeSelector[%s] = %s", k, v, k, have))
			}
		}
		for k, v := range s.NodeSelector {
			if pod.Spec.NodeSelector == nil {
				pod.Spec.NodeSelector = map[string]string{}
			}
			pod.Spec.NodeSelector[k] = v
		}
	next:
		for _, t := range s.Tolerations {
			for _, have := range pod.Spec.Tolerations {
				if have.MatchToleration(&t) && tolerationSecondsEqual(have.TolerationSeconds, t.TolerationSeconds) {
					continue next
				}
			}
			pod.Spec.Tolerations = append(pod.Spec.Tolerations, t)
		}
	}
	return nil
}

// Validate implements ValidatingPlugin.
func (p *RuntimeClass) Validate(ctx context.Context, a *Attributes) error {
	pod, err := podCreate(a)
	if pod == nil || err != nil {
		return err
	}
	rc, err := p.class(ctx, a, pod)
	if err != nil {
		return err
	}
	switch {
	case (rc == nil || rc.Overhead == nil) && pod.Spec.Overhead != nil:
		return NewForbidden(a, fmt.Errorf("pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"))
	case rc != nil && rc.Overhead != nil && !sameResources(pod.Spec.Overhead, rc.Overhead.PodFixed):
		return NewForbidden(a, fmt.Errorf("pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"))
	}
	return nil
}

// sameResources reports whether a and b hold the same quantities of the
// same resources (1000m equals 1).
func sameResources(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for name, q := range a {
		r, ok := b[name]
		if !ok || q.Cmp(r) != 0 {
			return false
		}
	}
	return true
}

func tolerationSecondsEqual(a, b *int64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}
