package controllers

import (
	"github.com/kubelab/kubelab/reference/controllers/controller"
	"github.com/kubelab/kubelab/reference/controllers/deployment"
	"github.com/kubelab/kubelab/reference/controllers/endpointslice"
	"github.com/kubelab/kubelab/reference/controllers/replicaset"
	"github.com/kubelab/kubelab/reference/controllers/replicationcontroller"
	"github.com/kubelab/kubelab/reference/controllers/rootcacert"
	"github.com/kubelab/kubelab/reference/controllers/serviceaccount"
)

// Builtin returns kubelab's controllers, one explicit list (no init()
// registration), in the order the manager builds them.
func Builtin() []Initializer {
	return []Initializer{
		{Name: serviceaccount.Name, New: func(c controller.Context) (Runner, error) { return serviceaccount.New(c) }},
		{Name: rootcacert.Name, New: func(c controller.Context) (Runner, error) { return rootcacert.New(c) }},
		{Name: endpointslice.Name, Component: "endpoint-slice-controller", New: func(c controller.Context) (Runner, error) { return endpointslice.New(c) }},
		{Name: deployment.Name, New: func(c controller.Context) (Runner, error) { return deployment.New(c) }},
		{Name: replicaset.Name, New: func(c controller.Context) (Runner, error) { return replicaset.New(c) }},
		{Name: replicationcontroller.Name, Component: "replication-controller", New: func(c controller.Context) (Runner, error) { return replicationcontroller.New(c) }},
	}
}
