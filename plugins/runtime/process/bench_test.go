package process

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// BenchmarkPodStartStop measures one pod's life: RunPodSandbox (netns,
// bridge, veth), CreateContainer + StartContainer (shim, init, overlay,
// exec), then StopPodSandbox and RemovePodSandbox.
func BenchmarkPodStartStop(b *testing.B) {
	ctx := context.Background()
	root := b.TempDir()
	_, cidr, _ := net.ParseCIDR(testPodCIDR())
	inst := fmt.Sprintf("b%d", os.Getpid())
	r, err := New(ctx, Config{RootDir: root, Images: fakeImages{busyboxRootfs}, Instance: inst, Network: NewBridgeNetwork(inst, root, cidr)})
	if err != nil {
		b.Fatal(err)
	}
	logs := b.TempDir()
	for i := 0; b.Loop(); i++ {
		cfg := sandboxConfig(fmt.Sprintf("bench-%d", i))
		cfg.LogDirectory = logs
		sb, err := r.RunPodSandbox(ctx, cfg, "")
		if err != nil {
			b.Fatal(err)
		}
		c := &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "main"},
			Image:    &runtimeapi.ImageSpec{Image: busyboxRef},
			Command:  []string{"sleep", "1000"},
		}
		id, err := r.CreateContainer(ctx, sb, c, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.StartContainer(ctx, id); err != nil {
			b.Fatal(err)
		}
		if err := r.RemovePodSandbox(ctx, sb); err != nil {
			b.Fatal(err)
		}
	}
}
