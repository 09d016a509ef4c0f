package store_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/kubelab/kubelab/conformance/store"
	"github.com/kubelab/kubelab/fakes/brokenstore"
	"github.com/kubelab/kubelab/plugins/store/memory"
	"github.com/kubelab/kubelab/spec"
)

// targetEnv names the plugin TestSuite runs against: "memory" (the default)
// or one of the broken stores of fakes/brokenstore.
const targetEnv = "KUBELAB_STORE_SUITE_TARGET"

// plugins are the stores TestSuite knows, by name.
func plugins() map[string]spec.StorePlugin {
	m := map[string]spec.StorePlugin{memory.Name: memory.Plugin()}
	for _, p := range brokenstore.Plugins(memory.Plugin()) {
		m[p.Name] = p
	}
	return m
}

// TestSuite runs the store suite against the plugin named by targetEnv.
func TestSuite(t *testing.T) {
	name := os.Getenv(targetEnv)
	if name == "" {
		name = memory.Name
	}
	p, ok := plugins()[name]
	if !ok {
		t.Fatalf("%s=%q names no known store", targetEnv, name)
	}
	store.Register(store.PluginTarget(p, spec.StoreConfig{}))
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(t, fmt.Sprintf("store conformance (%s)", name))
}
