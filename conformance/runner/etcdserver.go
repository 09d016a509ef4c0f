package runner

import (
	"context"
	"fmt"

	"github.com/kubelab/kubelab/spec"
)

// etcdServerAvailable reports whether this build can start an etcd server
// for the etcd-server target.
const etcdServerAvailable = false

// startEtcdServer starts an external etcd for one child's run and returns
// its client URLs and how to stop it.
func startEtcdServer(ctx context.Context) ([]string, func() error, error) {
	return nil, nil, fmt.Errorf("conformance/etcdserver is not part of this build yet: %w", spec.ErrUnsupported)
}
