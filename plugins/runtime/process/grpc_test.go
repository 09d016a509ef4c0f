package process

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/plugins/runtime/process/criserver"
)

// TestOverGRPC drives the runtime through its CRI gRPC adapters on a unix
// socket, as crictl and the kubelet do.
func TestOverGRPC(t *testing.T) {
	r := newTestRuntime(t)
	sock := "unix://" + filepath.Join(t.TempDir(), "cri.sock")
	lis, err := criserver.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	criserver.Register(srv, r)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rc, ic := runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	v, err := rc.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil || v.RuntimeName != RuntimeName {
		t.Fatalf("Version: %v, %v", v, err)
	}
	if _, err := ic.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}}); err != nil {
		t.Fatalf("PullImage of a present image: %v", err)
	}
	imgs, err := ic.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil || len(imgs.Images) != 1 {
		t.Fatalf("ListImages: %v, %v", imgs, err)
	}
	sbCfg := sandboxConfig("grpc")
	sbCfg.LogDirectory = t.TempDir()
	sb, err := rc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sbCfg})
	if err != nil {
		t.Fatal(err)
	}
	cfg := containerConfig("main", "sleep", "1000")
	c, err := rc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, Config: cfg, SandboxConfig: sbCfg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		t.Fatal(err)
	}
	ex, err := rc.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: c.ContainerId, Cmd: []string{"sh", "-c", "echo out; exit 6"}, Timeout: 5})
	if err != nil || ex.ExitCode != 6 || string(ex.Stdout) != "out\n" {
		t.Errorf("ExecSync: %v, %v; want exit code 6 in the response", ex, err)
	}
	_, err = rc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: "nope"})
	wantCode(t, "status over gRPC", err, codes.NotFound)
	if _, err := rc.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.ContainerId, Timeout: 0}); err != nil {
		t.Fatal(err)
	}
	st, err := rc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.ContainerId})
	if err != nil || st.Status.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.Status.ExitCode != 137 {
		t.Errorf("after stop: %v, %v", st, err)
	}
	if _, err := rc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
		t.Fatal(err)
	}
	list, err := rc.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil || len(list.Containers) != 0 {
		t.Errorf("containers after removing the sandbox: %v, %v", list, err)
	}
}
