package scheduler_test

import (
	"testing"
	"time"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/conformance/scheduler"
	"github.com/kubelab/kubelab/fakes/brokenscheduler"
)

// runSuite runs TestSuite in a child process of this test binary against
// the named profile, without the Slow specs, with extra environment.
func runSuite(t *testing.T, target string, env ...string) harness.Outcome {
	t.Helper()
	return harness.RunChild(t, harness.Child{
		Env:     append([]string{targetEnv + "=" + target}, env...),
		Flags:   []string{"-ginkgo.label-filter=!Slow"},
		Timeout: 10 * time.Minute,
	})
}

// TestBrokenSchedulersAreCaught runs the suite (without its Slow specs)
// against every broken scheduler of fakes/brokenscheduler, each in a child
// process, and checks that each fails on the capability meant to catch it
// and on no capability it has no business failing.
func TestBrokenSchedulersAreCaught(t *testing.T) {
	harness.ExpectAllCaught(t, scheduler.Capabilities(), brokenscheduler.Catalog(),
		func(b brokenscheduler.Broken) harness.Broken {
			return harness.Broken{Name: b.Profile.SchedulerName, CaughtBy: b.CaughtBy, AlsoFails: b.AlsoFails}
		},
		func(t *testing.T, b brokenscheduler.Broken) harness.Outcome {
			return runSuite(t, b.Profile.SchedulerName)
		})
}
