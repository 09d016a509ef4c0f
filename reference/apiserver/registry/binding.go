package registry

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubelab/kubelab/reference/apiserver/admission"
)

// BindOptions qualify a Bind.
type BindOptions struct {
	// DryRun decides and admits without writing.
	DryRun bool
	// Admission admits the Binding (operation CREATE on pods/binding, as
	// upstream); nil admits it unchecked.
	Admission admission.Interface
}

// Bind binds the pod namespace/name of r (the pods resource) to the node
// b names (POST pods/binding): it sets spec.nodeName, b's annotations and
// the PodScheduled condition. A Binding naming another pod or namespace is
// 400, one without a target node 422; a pod already bound, being deleted,
// with scheduling gates, or of another uid than b's is 409.
func (s *Storage) Bind(ctx context.Context, r *Resource, ns, name string, b *corev1.Binding, opts BindOptions) error {
	if err := validateBinding(b, ns, name); err != nil {
		return err
	}
	b.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Binding"))
	if err := admitRequest(ctx, opts.Admission, subresourceAttributes(ctx, r, SubBinding, ns, name, b, opts.DryRun)); err != nil {
		return err
	}
	now := s.now()
	_, _, err := s.Update(ctx, r, ns, name, func(cur runtime.Object) (runtime.Object, error) {
		return bindPod(cur.(*corev1.Pod), b, now)
	}, UpdateOptions{Subresource: SubBinding, DryRun: opts.DryRun})
	return err
}

// validateBinding checks a Binding posted for the pod namespace/name.
func validateBinding(b *corev1.Binding, ns, name string) error {
	if b.Name != "" && b.Name != name {
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", b.Name, name))
	}
	if b.Namespace != "" && b.Namespace != ns {
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	if b.Target.Name == "" {
		return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Binding").GroupKind(), name, field.ErrorList{
			field.Required(field.NewPath("target", "name"), "")})
	}
	return nil
}

// bindPod returns a copy of pod bound as b says at time now, or the 409
// Conflict that forbids it. It changes neither argument.
func bindPod(pod *corev1.Pod, b *corev1.Binding, now metav1.Time) (*corev1.Pod, error) {
	gr := corev1.Resource("pods")
	switch {
	case b.UID != "" && pod.UID != b.UID:
		return nil, apierrors.NewConflict(gr, pod.Name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", b.UID, pod.UID))
	case pod.DeletionTimestamp != nil:
		return nil, apierrors.NewConflict(gr, pod.Name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", pod.Name))
	case len(pod.Spec.SchedulingGates) > 0:
		return nil, apierrors.NewConflict(schema.GroupResource{Resource: "pods/binding"}, pod.Name, fmt.Errorf("pod %s has non-empty .spec.schedulingGates", pod.Name))
	case pod.Spec.NodeName != "":
		return nil, apierrors.NewConflict(gr, pod.Name, fmt.Errorf("pod %s is already assigned to node %q", pod.Name, pod.Spec.NodeName))
	}
	out := pod.DeepCopy()
	out.Spec.NodeName = b.Target.Name
	for k, v := range b.Annotations {
		if out.Annotations == nil {
			out.Annotations = map[string]string{}
		}
		out.Annotations[k] = v
	}
	setPodScheduled(out, now)
	out.ResourceVersion = ""
	return out, nil
}

// setPodScheduled sets the pod's PodScheduled condition to True.
func setPodScheduled(pod *corev1.Pod, now metav1.Time) {
	for i := range pod.Status.Conditions {
		c := &pod.Status.Conditions[i]
		if c.Type == corev1.PodScheduled {
			if c.Status != corev1.ConditionTrue {
				c.Status, c.LastTransitionTime, c.Reason, c.Message = corev1.ConditionTrue, now, "", ""
			}
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now})
}
