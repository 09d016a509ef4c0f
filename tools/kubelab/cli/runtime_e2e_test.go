package cli_test

import (
	"context"
	_ "crypto/sha256" // digests of the built image
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/spec/ociimage"
)

// TestRuntimeBinaryServesCRI builds the kubelab binary, imports the busybox
// image with `kubelab runtime import`, serves the process runtime with
// `kubelab runtime --listen` and runs a pod through CRI gRPC: the binary's
// main does not call process.RunInitIfRequested, so this proves that the
// shim and the init reach it through the hidden command.
func TestRuntimeBinaryServesCRI(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("builds the kubelab binary and needs root")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "kubelab")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	spec, err := ociimage.BusyboxImage(ociimage.DefaultBusybox)
	if err != nil {
		t.Skip(err)
	}
	img, err := ociimage.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "busybox.tar")
	if err := img.WriteArchiveFile(archive); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	if out, err := exec.Command(bin, "runtime", "import", "--image-dir", filepath.Join(root, "images"), archive).CombinedOutput(); err != nil {
		t.Fatalf("kubelab runtime import: %v\n%s", err, out)
	}
	sock := "unix://" + filepath.Join(dir, "cri.sock")
	srv := exec.Command(bin, "runtime", "--listen", sock, "--root", root,
		"--option", "pod-cidr=10.199.99.0/24", "--option", "instance=clie2e")
	srv.Stdout, srv.Stderr = os.Stderr, os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Signal(os.Interrupt); _ = srv.Wait() })

	conn, err := grpc.NewClient(sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rc := runtimeapi.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if _, err := rc.Version(ctx, &runtimeapi.VersionRequest{}); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("the runtime never answered: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	sbCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "e2e", Namespace: "default", Uid: "e2e-uid"},
		Hostname:     "e2e-host",
		LogDirectory: filepath.Join(dir, "logs"),
	}
	sb, err := rc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sbCfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = rc.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId})
	})
	c, err := rc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, SandboxConfig: sbCfg, Config: &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "main"},
		Image:    &runtimeapi.ImageSpec{Image: ociimage.BusyboxImageName},
		Command:  []string{"sh", "-c", "echo hello from $(hostname); exit 2"},
		LogPath:  "main.log",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		t.Fatal(err)
	}
	for {
		st, err := rc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.ContainerId})
		if err != nil {
			t.Fatal(err)
		}
		if st.Status.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			if st.Status.ExitCode != 2 {
				t.Errorf("exit code %d (%s %s)", st.Status.ExitCode, st.Status.Reason, st.Status.Message)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the container never exited")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(filepath.Join(sbCfg.LogDirectory, "main.log"))
	if err != nil || !strings.Contains(string(b), " stdout F hello from e2e-host\n") {
		t.Errorf("container log: %q, %v", b, err)
	}
	if _, err := rc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
		t.Fatal(err)
	}
}
