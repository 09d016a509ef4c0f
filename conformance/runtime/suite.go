package runtime

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// Register declares every spec of the runtime suite against t. Call it
// once, before Ginkgo's RunSpecs, from the program or test that runs the
// suite; it declares top-level containers and an AfterSuite that stops the
// runtime, and runs nothing itself.
func Register(t Target) {
	s := &shared{target: t}
	describeVersion(s)
	describeSandbox(s)
	describeNetworkNamespace(s)
	describeContainerLifecycle(s)
	describeContainerMetadata(s)
	describeExitCode(s)
	describeEnvArgsWorkdir(s)
	describeLogs(s)
	describeExec(s)
	describeResources(s)
	describeStopGrace(s)
	describeStopTimeout(s)
	describeImages(s)
	describeStats(s)
	describeErrors(s)
	describePIDNamespace(s)
	AfterSuite(func() {
		Expect(s.close()).To(Succeed(), "stopping runtime target %q", t.Name)
	})
}
