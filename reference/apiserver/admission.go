package apiserver

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
)

// Operation is the kind of write an admission plugin sees.
type Operation string

// The operations of admission, as upstream's admission.Operation.
const (
	Create Operation = "CREATE"
	Update Operation = "UPDATE"
	Delete Operation = "DELETE"
)

// Attributes describe one write for admission.
type Attributes struct {
	// Operation is CREATE, UPDATE (also for patches) or DELETE.
	Operation Operation
	// Resource and Subresource name what is written ("pods", "status").
	Resource    schema.GroupVersionResource
	Subresource string
	// Kind is the kind of Object.
	Kind schema.GroupVersionKind
	// Namespace and Name of the object ("" for cluster-scoped / generated).
	Namespace, Name string
	// Object is the object to be stored (nil on DELETE); a mutating plugin
	// may change it in place. OldObject is the current object (nil on
	// CREATE). Both are the typed k8s.io/api objects of the resource; for
	// status and scale, Object is the full object after the change; for a
	// POST to pods/binding or pods/eviction (operation CREATE, as upstream)
	// it is the request's Binding or Eviction and OldObject is nil.
	Object, OldObject runtime.Object
	// DryRun is true for dryRun=All requests.
	DryRun bool
	// User is the authenticated user (nil when no authentication filter
	// put one in the request context with request.WithUser).
	User user.Info
}

// Admission is the admission chain of the API server: Admit (mutating) runs
// after defaulting and before validation, Validate after validation just
// before the store write. An error rejects the request; return a Kubernetes
// API error (k8s.io/apimachinery/pkg/api/errors, e.g. NewForbidden) to choose
// the status code, anything else is a 500.
//
// Implementations must be safe for concurrent use.
type Admission interface {
	// Admit may change a.Object.
	Admit(ctx context.Context, a *Attributes) error
	// Validate must not change anything.
	Validate(ctx context.Context, a *Attributes) error
}

// NoAdmission admits everything unchanged; it is the default chain.
type NoAdmission struct{}

// Admit does nothing.
func (NoAdmission) Admit(context.Context, *Attributes) error { return nil }

// Validate does nothing.
func (NoAdmission) Validate(context.Context, *Attributes) error { return nil }

// Chain runs admission plugins in order: every Admit, in order, then every
// Validate, in order; the first error stops it.
type Chain []Admission

// Admit runs each plugin's Admit.
func (c Chain) Admit(ctx context.Context, a *Attributes) error {
	for _, p := range c {
		if err := p.Admit(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

// Validate runs each plugin's Validate.
func (c Chain) Validate(ctx context.Context, a *Attributes) error {
	for _, p := range c {
		if err := p.Validate(ctx, a); err != nil {
			return err
		}
	}
	return nil
}
