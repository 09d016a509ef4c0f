package registry

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kubelab/kubelab/reference/apiserver/admission"
)

// attributes are the admission attributes of a write of obj (old: the
// stored object, nil on CREATE) to r's subresource sub, by the user in ctx
// (request.WithUser). Namespace and name come from obj, else old.
func attributes(ctx context.Context, op admission.Operation, r *Resource, sub string, obj, old runtime.Object, dry bool) *admission.Attributes {
	u, _ := request.UserFrom(ctx)
	a := &admission.Attributes{
		Operation: op, Resource: r.GroupVersion().WithResource(r.Name), Subresource: sub,
		Kind: r.GroupVersionKind(), Object: obj, OldObject: old, UserInfo: u, DryRun: dry,
	}
	for _, o := range []runtime.Object{obj, old} {
		if o != nil {
			m := objectMeta(o)
			a.Namespace, a.Name = m.GetNamespace(), m.GetName()
			break
		}
	}
	return a
}

// subresourceAttributes are the admission attributes of a POST of req (a
// Binding, an Eviction) to r's subresource sub of namespace/name: operation
// CREATE with the request's object, as upstream.
func subresourceAttributes(ctx context.Context, r *Resource, sub, namespace, name string, req runtime.Object, dry bool) *admission.Attributes {
	u, _ := request.UserFrom(ctx)
	return &admission.Attributes{
		Operation: admission.Create, Resource: r.GroupVersion().WithResource(r.Name), Subresource: sub,
		Kind: req.GetObjectKind().GroupVersionKind(), Namespace: namespace, Name: name, Object: req, UserInfo: u, DryRun: dry,
	}
}

// admit runs chain's mutating step; a nil chain admits everything.
func admit(ctx context.Context, chain admission.Interface, a *admission.Attributes) error {
	if chain == nil {
		return nil
	}
	return chain.Admit(ctx, a)
}

// validate runs chain's validating step; a nil chain admits everything.
func validate(ctx context.Context, chain admission.Interface, a *admission.Attributes) error {
	if chain == nil {
		return nil
	}
	return chain.Validate(ctx, a)
}

// admitRequest runs both steps for a request object that the chain may not
// change the stored object through (a Binding, an Eviction).
func admitRequest(ctx context.Context, chain admission.Interface, a *admission.Attributes) error {
	if err := admit(ctx, chain, a); err != nil {
		return err
	}
	return validate(ctx, chain, a)
}
