package store

import (
	"context"

	"github.com/kubelab/kubelab/spec"
)

// Target is the store under test in one run of the suite.
type Target struct {
	// Name is how reports name the target, e.g. "memory" or "etcd-server".
	Name string
	// Capabilities are the optional capabilities the target claims; specs
	// of unclaimed ones are skipped.
	Capabilities spec.Capabilities
	// Open opens a store whose data lives in dataDir, a directory created
	// for the spec. Opening again with the same dataDir must find the same
	// data when Capabilities include spec.CapStoreDurable. Targets that
	// connect to an external server ignore dataDir; the suite isolates specs
	// from each other with a fresh key prefix per spec, so targets may share
	// one server.
	Open func(ctx context.Context, dataDir string) (spec.Store, error)
}
