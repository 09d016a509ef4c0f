package runtime_test

import (
	"testing"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/conformance/runtime"
	"github.com/kubelab/kubelab/fakes/brokenruntime"
	"github.com/kubelab/kubelab/plugins/runtime/process"
)

// TestBrokenRuntimesAreCaught runs the suite against every broken runtime
// of fakes/brokenruntime, each in a child process, and checks that each
// fails on the capability meant to catch it and on no capability it has
// no business failing.
func TestBrokenRuntimesAreCaught(t *testing.T) {
	harness.ExpectAllCaught(t, runtime.Capabilities(), brokenruntime.Catalog(process.Plugin()),
		func(b brokenruntime.Broken) harness.Broken {
			return harness.Broken{Name: b.Plugin.Name, CaughtBy: b.CaughtBy, AlsoFails: b.AlsoFails}
		},
		func(t *testing.T, b brokenruntime.Broken) harness.Outcome {
			return harness.RunChild(t, harness.Child{Env: []string{targetEnv + "=" + b.Plugin.Name}})
		})
}
