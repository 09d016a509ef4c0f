package runner

import (
	"context"

	"github.com/kubelab/kubelab/conformance/etcdserver"
)

// etcdBinary is where the etcd-server pseudo-target finds etcd; it is a
// default target only when this file exists.
var etcdBinary = etcdserver.DefaultBinary

// startEtcdServer starts a real etcd (conformance/etcdserver) for one
// child's run and returns its client URLs and how to stop it. If the child
// dies without stopping it, the server dies too.
func startEtcdServer(ctx context.Context) ([]string, func() error, error) {
	srv, err := etcdserver.Start(ctx, etcdserver.Options{})
	if err != nil {
		return nil, nil, err
	}
	return srv.Endpoints(), srv.Stop, nil
}
