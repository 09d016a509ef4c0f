package admission

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NamespaceLifecycleName is the NamespaceLifecycle plugin's name.
const NamespaceLifecycleName = "NamespaceLifecycle"

// NamespaceGetter reads namespaces. A namespace that does not exist is an
// error for which apierrors.IsNotFound is true; other errors are failures.
// The returned object must not be modified.
type NamespaceGetter interface {
	GetNamespace(ctx context.Context, name string) (*corev1.Namespace, error)
}

// NamespaceGetterFunc adapts a function to NamespaceGetter.
type NamespaceGetterFunc func(ctx context.Context, name string) (*corev1.Namespace, error)

// GetNamespace implements NamespaceGetter.
func (f NamespaceGetterFunc) GetNamespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	return f(ctx, name)
}

// NamespaceLifecycle is a validating plugin that keeps content out of
// namespaces that do not exist or are being deleted:
//   - a namespaced write (not DELETE) in a missing namespace is 404 NotFound
//     (`namespaces "x" not found`);
//   - a CREATE in a namespace whose status.phase is Terminating (or that
//     has a deletionTimestamp) is 403
//     Forbidden, `unable to create new content in namespace x because it
//     is being terminated`, with a NamespaceTerminating cause;
//   - deleting the immortal namespaces default, kube-system and kube-public
//     is 403 Forbidden;
//   - namespaces themselves, cluster-scoped resources, every DELETE, and
//     local access reviews (which must not reveal whether a namespace
//     exists) pass.
type NamespaceLifecycle struct {
	namespaces NamespaceGetter
	immortal   map[string]bool
}

var _ ValidatingPlugin = (*NamespaceLifecycle)(nil)

// NewNamespaceLifecycle returns the plugin reading namespaces through ns.
func NewNamespaceLifecycle(ns NamespaceGetter) *NamespaceLifecycle {
	return &NamespaceLifecycle{namespaces: ns, immortal: map[string]bool{
		metav1.NamespaceDefault: true, metav1.NamespaceSystem: true, metav1.NamespacePublic: true,
	}}
}

// Name implements Plugin.
func (*NamespaceLifecycle) Name() string { return NamespaceLifecycleName }

// Validate implements ValidatingPlugin.
func (p *NamespaceLifecycle) Validate(ctx context.Context, a *Attributes) error {
	if a.Resource.Group == "" && a.Resource.Resource == "namespaces" {
		if a.Operation == Delete && a.Subresource == "" && p.immortal[a.Name] {
			return NewForbidden(a, errors.New("this namespace may not be deleted"))
		}
		return nil
	}
	if a.Namespace == "" || a.Operation == Delete {
		return nil
	}
	if a.Resource.Group == "authorization.k8s.io" && a.Resource.Resource == "localsubjectaccessreviews" {
		return nil
	}
	ns, err := p.namespaces.GetNamespace(ctx, a.Namespace)
	if apierrors.IsNotFound(err) {
		return apierrors.NewNotFound(corev1.Resource("namespaces"), a.Namespace)
	}
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("namespace %q: %w", a.Namespace, err))
	}
	if a.Operation == Create && (ns.Status.Phase == corev1.NamespaceTerminating || ns.DeletionTimestamp != nil) {
		st := NewForbidden(a, fmt.Errorf("unable to create new content in namespace %s because it is being terminated", a.Namespace))
		if st.ErrStatus.Details == nil {
			st.ErrStatus.Details = &metav1.StatusDetails{}
		}
		st.ErrStatus.Details.Causes = append(st.ErrStatus.Details.Causes, metav1.StatusCause{
			Type:    corev1.NamespaceTerminatingCause,
			Message: fmt.Sprintf("namespace %s is being terminated", a.Namespace),
			Field:   "metadata.namespace",
		})
		return st
	}
	return nil
}
