package controllers

import (
	"github.com/kubelab/kubelab/reference/controllers/controller"
	"github.com/kubelab/kubelab/reference/controllers/deployment"
	"github.com/kubelab/kubelab/reference/controllers/endpointslice"
	"github.com/kubelab/kubelab/reference/controllers/garbagecollector"
	"github.com/kubelab/kubelab/reference/controllers/namespace"
	"github.com/kubelab/kubelab/reference/controllers/podgc"
	"github.com/kubelab/kubelab/reference/controllers/replicaset"
	"github.com/kubelab/kubelab/reference/controllers/replicationcontroller"
	"github.com/kubelab/kubelab/reference/controllers/rootcacert"
	"github.com/kubelab/kubelab/reference/controllers/serviceaccount"
	"github.com/kubelab/kubelab/reference/controllers/ttlafterfinished"
)

// Builtin returns kubelab's controllers, one explicit list (no init()
// registration), in the order the manager builds them. Names are
// upstream's canonical ones (cmd/kube-controller-manager/names), aliases
// its older short names (each package's Name), both accepted by
// --controllers as upstream.
func Builtin() []Initializer {
	return []Initializer{
		{Name: "serviceaccount-controller", Aliases: []string{serviceaccount.Name}, Component: "serviceaccount-controller",
			New: func(c controller.Context) (Runner, error) { return serviceaccount.New(c) }},
		{Name: "root-ca-certificate-publisher-controller", Aliases: []string{rootcacert.Name}, Component: "root-ca-cert-publisher",
			New: func(c controller.Context) (Runner, error) { return rootcacert.New(c) }},
		{Name: "endpointslice-controller", Aliases: []string{endpointslice.Name}, Component: "endpoint-slice-controller",
			New: func(c controller.Context) (Runner, error) { return endpointslice.New(c) }},
		{Name: "deployment-controller", Aliases: []string{deployment.Name}, Component: "deployment-controller",
			New: func(c controller.Context) (Runner, error) { return deployment.New(c) }},
		{Name: "pod-garbage-collector-controller", Aliases: []string{podgc.Name}, Component: "pod-garbage-collector",
			New: func(c controller.Context) (Runner, error) { return podgc.New(c) }},
		{Name: "replicaset-controller", Aliases: []string{replicaset.Name}, Component: "replicaset-controller",
			New: func(c controller.Context) (Runner, error) { return replicaset.New(c) }},
		{Name: "ttl-after-finished-controller", Aliases: []string{ttlafterfinished.Name}, Component: "ttl-after-finished-controller",
			New: func(c controller.Context) (Runner, error) { return ttlafterfinished.New(c) }},
		{Name: "replicationcontroller-controller", Aliases: []string{replicationcontroller.Name}, Component: "replication-controller",
			New: func(c controller.Context) (Runner, error) { return replicationcontroller.New(c) }},
		{Name: "namespace-controller", Aliases: []string{namespace.Name}, Component: "namespace-controller",
			New: func(c controller.Context) (Runner, error) { return namespace.New(c) }},
		{Name: "garbage-collector-controller", Aliases: []string{garbagecollector.Name}, Component: "garbage-collector-controller",
			New: func(c controller.Context) (Runner, error) { return garbagecollector.New(c) }},
	}
}
