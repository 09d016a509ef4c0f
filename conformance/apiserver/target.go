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
	// CapList: label and field selectors, paging with limit and continue.
	CapList spec.Capability = "apiserver:list"
	// CapWatch: ordered watch events, resuming from a resourceVersion,
	// informers.
	CapWatch spec.Capability = "apiserver:watch"
	// CapPatch: JSON merge, JSON and strategic merge patches.
	CapPatch spec.Capability = "apiserver:patch"
	// CapStatus: the status subresource and metadata.generation.
	CapStatus spec.Capability = "apiserver:status"
	// CapValidation: 422 Invalid with field causes, strict field validation.
	CapValidation spec.Capability = "apiserver:validation"
	// CapCoordination: leader election through Leases.
	CapCoordination spec.Capability = "apiserver:coordination"
)

// Capabilities lists every capability label of the suite, in report order.
func Capabilities() []spec.Capability {
	return []spec.Capability{CapCRUD, CapList, CapWatch, CapPatch, CapStatus, CapValidation, CapCoordination}
}
