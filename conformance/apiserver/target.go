package apiserver

import (
	"context"

	"k8s.io/client-go/rest"

	"github.com/kubelab/kubelab/spec"
)

// Target is the API server under test in one run of the suite.
type Target struct {
	// Name is how reports name the target, e.g. "memory".
	Name string
	// Config returns a client config for the server. It is called before
	// each spec, so it may start the server on first use; it must return
	// the same server every time.
	Config func(ctx context.Context) (*rest.Config, error)
}

// Capability labels of the suite; every spec carries exactly one. All are
// mandatory.
const (
	// CapCRUD: create, get, update and delete with server-set metadata,
	// AlreadyExists, NotFound and Conflict.
	CapCRUD spec.Capability = "apiserver:crud"
	// CapList: label and field selectors, paging with limit and continue,
	// resourceVersion and resourceVersionMatch.
	CapList spec.Capability = "apiserver:list"
	// CapWatch: ordered watch events, resuming from a resourceVersion,
	// 410 for a too-old one, timeoutSeconds, bookmarks, initial events.
	CapWatch spec.Capability = "apiserver:watch"
	// CapPatch: JSON merge, JSON and strategic merge patches.
	CapPatch spec.Capability = "apiserver:patch"
	// CapStatus: the status subresource and metadata.generation.
	CapStatus spec.Capability = "apiserver:status"
	// CapValidation: 422 Invalid with field causes, strict field validation.
	CapValidation spec.Capability = "apiserver:validation"
	// CapLeaderElection: client-go leader election through Leases: one
	// leader among candidates, handover on release and on expiry.
	CapLeaderElection spec.Capability = "apiserver:leader-election"
	// CapInformers: client-go SharedInformers: ordered notifications, a
	// lister matching a fresh list, surviving watches that end.
	CapInformers spec.Capability = "apiserver:informers"
	// CapDynamic: client-go's dynamic client on unstructured objects.
	CapDynamic spec.Capability = "apiserver:dynamic-client"
	// CapDelete: finalizers, graceful pod deletion, propagationPolicy and
	// deletecollection.
	CapDelete spec.Capability = "apiserver:delete"
)

// Capabilities lists every capability label of the suite, in report order.
func Capabilities() []spec.Capability {
	return []spec.Capability{CapCRUD, CapList, CapWatch, CapPatch, CapStatus, CapValidation, CapDelete,
		CapInformers, CapDynamic, CapLeaderElection}
}
