package scheduler

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a scheduler leaves goroutines behind once
// its Run returned and the test API servers closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// klog's flush daemon, started by client-go's first log line.
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
	)
}
