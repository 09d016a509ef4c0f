package controllers_test

import (
	"github.com/kubelab/kubelab/plugins/store/memory"
	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/spec"
)

// The test API servers of this package run over the memory store, handed
// in here because reference/ never imports a concrete plugin.
func init() {
	apiservertest.NewStore = func() (spec.Store, error) { return memory.New(memory.Options{}), nil }
}
