package store_test

import (
	"testing"
	"time"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/conformance/store"
	"github.com/kubelab/kubelab/fakes/brokenstore"
	"github.com/kubelab/kubelab/plugins/store/memory"
)

// TestBrokenStoresAreCaught runs the suite against every broken store of
// fakes/brokenstore, each in a child process, and checks that each fails on
// the capability meant to catch it and on no capability it has no business
// failing.
func TestBrokenStoresAreCaught(t *testing.T) {
	harness.ExpectAllCaught(t, store.Capabilities(), brokenstore.Catalog(memory.Plugin()),
		func(b brokenstore.Broken) harness.Broken {
			return harness.Broken{Name: b.Plugin.Name, CaughtBy: b.CaughtBy, AlsoFails: b.AlsoFails}
		},
		func(t *testing.T, b brokenstore.Broken) harness.Outcome {
			var flags []string
			if !b.NeedsSlow {
				flags = append(flags, "-ginkgo.label-filter=!Slow")
			}
			return harness.RunChild(t, harness.Child{Env: []string{targetEnv + "=" + b.Plugin.Name}, Flags: flags, Timeout: 10 * time.Minute})
		})
}
