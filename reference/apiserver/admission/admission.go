// Package admission is the API server's admission chain — the one
// declaration of it: the Attributes a write is admitted with, the plugin
// interfaces, the Chain the registry's write path runs (registry.Storage
// takes an Interface in its options) and the built-in plugins. After a write
// request is authenticated and authorized, mutating plugins may change the
// object (defaulting), and validating plugins may reject it, in that order,
// before it is stored. The built-in plugins are NamespaceLifecycle,
// NodeRestriction, Priority, RuntimeClass and ServiceAccount (defaulting
// only); Builtin lists them in order, so adding one is its own file plus its
// line there.
//
// Objects are the external k8s.io/api types (*corev1.Pod, *corev1.Node, …)
// that the API server decodes; a plugin ignores kinds it does not handle.
// Plugins return *apierrors.StatusError values (Forbidden, NotFound, …) that
// the server writes as the response's metav1.Status. Plugins keep no state
// beyond their getters and start no goroutines.
package admission

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
)

// Operation is the kind of write being admitted.
type Operation string

// The operations, spelled as Kubernetes admission spells them.
const (
	// Create is a POST that makes an object (or a subresource such as
	// pods/binding or pods/eviction).
	Create Operation = "CREATE"
	// Update is a PUT or PATCH of an existing object or its subresource.
	Update Operation = "UPDATE"
	// Delete removes an object; Object is nil, OldObject the stored one.
	Delete Operation = "DELETE"
	// Connect is a connection to a pod or node (exec, attach, proxy).
	Connect Operation = "CONNECT"
)

// Attributes describe one write request. The registry builds them (see
// registry.Storage); mutating plugins may change Object in place but never
// replace it; nothing else may be changed.
type Attributes struct {
	// Operation is CREATE, UPDATE (also for patches and apply) or DELETE.
	Operation Operation
	// Resource is the resource written, e.g. {"" v1 pods}.
	Resource schema.GroupVersionResource
	// Subresource is "" for the main resource, else e.g. "status".
	Subresource string
	// Kind is the kind of Object: the resource's kind, or the request's
	// kind for a POST to a subresource (Binding, Eviction).
	Kind schema.GroupVersionKind
	// Namespace is "" for cluster-scoped resources.
	Namespace string
	// Name is the object's name; "" for a CREATE whose object has only
	// generateName.
	Name string
	// Object is the new object (CREATE, UPDATE); nil for DELETE. For
	// status and scale updates it is the whole object after the change.
	// For a POST to pods/binding or pods/eviction (operation CREATE, as
	// upstream) it is the request's Binding or Eviction and OldObject is
	// nil.
	Object runtime.Object
	// OldObject is the stored object (UPDATE, DELETE); nil for CREATE.
	OldObject runtime.Object
	// UserInfo is the authenticated requester; nil when no authentication
	// put one in the request's context (request.WithUser).
	UserInfo user.Info
	// DryRun is true when nothing will be persisted: plugins must then
	// have no side effects.
	DryRun bool
}

// Interface is what a write path runs: Admit (mutating) after defaulting and
// before the object's own validation, Validate after it, just before the
// store write. An error rejects the request; it is an *apierrors.StatusError
// whose code the API server answers with. Implementations must be safe for
// concurrent use. *Chain is the implementation.
type Interface interface {
	// Admit may change a.Object in place (never replace it).
	Admit(ctx context.Context, a *Attributes) error
	// Validate must not change anything.
	Validate(ctx context.Context, a *Attributes) error
}

var _ Interface = (*Chain)(nil)

// Plugin is an admission plugin. It must also implement MutatingPlugin,
// ValidatingPlugin or both.
type Plugin interface {
	// Name is the plugin's registered name, e.g. "NamespaceLifecycle".
	Name() string
}

// MutatingPlugin may change a.Object. A nil error admits the request.
type MutatingPlugin interface {
	Plugin
	Admit(ctx context.Context, a *Attributes) error
}

// ValidatingPlugin may reject a request but must not change it. A nil
// error admits the request.
type ValidatingPlugin interface {
	Plugin
	Validate(ctx context.Context, a *Attributes) error
}

// Chain runs plugins in the order given: Admit runs every mutating plugin,
// Validate every validating one; each stops at the first error. A Chain is
// immutable and safe for concurrent use when its plugins are. A nil *Chain
// admits everything.
type Chain struct {
	mutating   []MutatingPlugin
	validating []ValidatingPlugin
}

// NewChain builds a chain. A plugin that is neither mutating nor
// validating, or two plugins with the same name, are an error.
func NewChain(plugins ...Plugin) (*Chain, error) {
	c := &Chain{}
	seen := map[string]bool{}
	for _, p := range plugins {
		if seen[p.Name()] {
			return nil, fmt.Errorf("admission plugin %q registered twice", p.Name())
		}
		seen[p.Name()] = true
		m, isM := p.(MutatingPlugin)
		v, isV := p.(ValidatingPlugin)
		if !isM && !isV {
			return nil, fmt.Errorf("admission plugin %q is neither mutating nor validating", p.Name())
		}
		if isM {
			c.mutating = append(c.mutating, m)
		}
		if isV {
			c.validating = append(c.validating, v)
		}
	}
	return c, nil
}

// Builtin returns the built-in plugins in upstream's order:
// NamespaceLifecycle, ServiceAccount, NodeRestriction, Priority,
// RuntimeClass. They read namespaces, priority classes and runtime classes
// through the getters given (the API server hands it its registry's). A new
// built-in plugin is added here.
func Builtin(namespaces NamespaceGetter, priorityClasses PriorityClassLister, runtimeClasses RuntimeClassGetter) []Plugin {
	return []Plugin{NewNamespaceLifecycle(namespaces), NewServiceAccount(), NewNodeRestriction(), NewPriority(priorityClasses),
		NewRuntimeClass(runtimeClasses)}
}

// DefaultChain is the chain of the Builtin plugins.
func DefaultChain(namespaces NamespaceGetter, priorityClasses PriorityClassLister, runtimeClasses RuntimeClassGetter) *Chain {
	c, err := NewChain(Builtin(namespaces, priorityClasses, runtimeClasses)...)
	if err != nil {
		panic(err) // the built-in names are distinct
	}
	return c
}

// Admit runs the mutating plugins. The error is an *apierrors.StatusError —
// a plugin's status error as is, any other error as 500 InternalError —
// or, when ctx ended, the plugin's error wrapping ctx.Err() (the API server
// answers a deadline with 504).
func (c *Chain) Admit(ctx context.Context, a *Attributes) error {
	if c == nil {
		return nil
	}
	for _, p := range c.mutating {
		if err := p.Admit(ctx, a); err != nil {
			return asStatus(ctx, p.Name(), err)
		}
	}
	return nil
}

// Validate runs the validating plugins; errors as Admit.
func (c *Chain) Validate(ctx context.Context, a *Attributes) error {
	if c == nil {
		return nil
	}
	for _, p := range c.validating {
		if err := p.Validate(ctx, a); err != nil {
			return asStatus(ctx, p.Name(), err)
		}
	}
	return nil
}

// Run is Admit followed by Validate, for callers with no validation of
// their own in between (the API server validates the object between the
// two).
func (c *Chain) Run(ctx context.Context, a *Attributes) error {
	if err := c.Admit(ctx, a); err != nil {
		return err
	}
	return c.Validate(ctx, a)
}

func asStatus(ctx context.Context, plugin string, err error) error {
	var st apierrors.APIStatus
	if errors.As(err, &st) || (ctx.Err() != nil && errors.Is(err, ctx.Err())) {
		return err
	}
	return apierrors.NewInternalError(fmt.Errorf("admission plugin %q failed: %w", plugin, err))
}

// NewForbidden returns 403 Forbidden for the resource and object a names,
// as upstream admission does: `pods "web" is forbidden: <err>`. Without a
// name it uses the object's name or generateName, else "Unknown".
func NewForbidden(a *Attributes, err error) *apierrors.StatusError {
	var st *apierrors.StatusError
	if errors.As(err, &st) && apierrors.IsForbidden(st) {
		return st
	}
	return apierrors.NewForbidden(a.Resource.GroupResource(), objectName(a), err)
}

func objectName(a *Attributes) string {
	if a.Name != "" {
		return a.Name
	}
	if a.Object != nil {
		if m, err := meta.Accessor(a.Object); err == nil {
			if m.GetName() != "" {
				return m.GetName()
			}
			if m.GetGenerateName() != "" {
				return m.GetGenerateName()
			}
		}
	}
	return "Unknown"
}

// wrongType is the error for an object of a kind the resource does not hold.
func wrongType(a *Attributes, obj runtime.Object) error {
	return apierrors.NewBadRequest(fmt.Sprintf("resource %s: unexpected object of type %T", a.Resource.GroupResource(), obj))
}
