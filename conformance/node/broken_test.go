package node_test

import (
	"os"
	"testing"
	"time"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/conformance/node"
)

// TestConstantBackoffIsCaught runs the crash-loop back-off specs, in a
// child process, against kubelab's kubelet configured with a back-off that
// never grows (initial = max = 3 s), and checks that they fail, and only
// they. It is no broken kubelet (fakes/ may not import reference/kubelet,
// so there are none yet), only a misconfiguration the suite must notice.
func TestConstantBackoffIsCaught(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("runs the suite over the process runtime, which needs root")
	}
	o := harness.RunChild(t, harness.Child{
		Env:     []string{backoffEnv + "=3s,3s"},
		Flags:   []string{"-ginkgo.label-filter=" + string(node.CapCrashLoopBackOff)},
		Timeout: 5 * time.Minute,
	})
	harness.ExpectCaught(t, harness.Broken{Name: "constant back-off", CaughtBy: node.CapCrashLoopBackOff}, o)
}
