package nodee2e

import (
	"context"
	"testing"

	rtsuite "github.com/kubelab/kubelab/conformance/runtime"
	"github.com/kubelab/kubelab/plugins/runtime/process"
	"github.com/kubelab/kubelab/spec"
)

// startProcessRuntime starts kubelab's process runtime with the test images
// in images and a random pod range. A kubelet leaves pods running when it
// stops, so the test's cleanup removes every sandbox, then stops the
// runtime.
func startProcessRuntime(ctx context.Context, t *testing.T, images string) spec.Runtime {
	t.Helper()
	target := rtsuite.PluginTarget(process.Plugin(), images, map[string]string{process.OptionPodCIDR: rtsuite.RandomPodCIDR()})
	rt, stopRuntime, err := target.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sbs, err := rt.ListPodSandbox(context.Background(), nil)
		if err != nil {
			t.Errorf("list sandboxes: %v", err)
		}
		for _, s := range sbs {
			if err := rt.RemovePodSandbox(context.Background(), s.GetId()); err != nil {
				t.Errorf("remove sandbox %s: %v", s.GetId(), err)
			}
		}
		if err := stopRuntime(); err != nil {
			t.Errorf("stop runtime: %v", err)
		}
	})
	return rt
}
