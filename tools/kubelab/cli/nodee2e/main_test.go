package nodee2e

import (
	"os"
	"testing"

	"github.com/kubelab/kubelab/plugins/runtime/process"
)

func TestMain(m *testing.M) {
	// The process runtime re-executes this binary as container shims.
	process.RunInitIfRequested()
	os.Exit(m.Run())
}
