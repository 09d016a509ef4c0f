package containerd_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/conformance/containerd"
	"github.com/kubelab/kubelab/plugins/runtime/cri"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/ociimage"
)

// TestContainerdThroughThePlugin runs a pod through plugins/runtime/cri against a
// real containerd: images, sandbox, container logs, ExecSync, stop, remove,
// and CRI's error codes as cri-client passes them on.
func TestContainerdThroughThePlugin(t *testing.T) {
	if err := containerd.Available(); err != nil {
		t.Skipf("no containerd here (make deps installs it): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := containerd.Start(ctx, containerd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Error(err)
		}
	})
	rt, closeRT, err := cri.Plugin().New(ctx, spec.RuntimeConfig{Options: map[string]string{"endpoint": d.Endpoint(), "timeout": "1m"}})
	if err != nil {
		t.Fatal(err)
	}
	defer closeRT()

	v, err := rt.Version(ctx, "v1")
	if err != nil || v.RuntimeName != "containerd" {
		t.Fatalf("Version = %+v, %v", v, err)
	}
	img, err := rt.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: ociimage.WorkloadImageName}, false)
	if err != nil || img.GetImage() == nil {
		t.Fatalf("ImageStatus(%s) = %v, %v", ociimage.WorkloadImageName, img, err)
	}
	if img, err := rt.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: "kubelab.local/absent:1.0"}, false); err != nil || img.GetImage() != nil {
		t.Errorf("ImageStatus of an absent image = %v, %v; want no image and no error", img, err)
	}

	logDir := t.TempDir()
	sbCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "cri-plugin", Namespace: "default", Uid: "cri-plugin-uid"},
		Hostname:     "cri-plugin",
		LogDirectory: logDir,
	}
	sb, err := rt.RunPodSandbox(ctx, sbCfg, "")
	if err != nil {
		t.Fatal(err)
	}
	cid, err := rt.CreateContainer(ctx, sb, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "logger"},
		Image:    &runtimeapi.ImageSpec{Image: ociimage.WorkloadImageName},
		Args:     []string{"logs", "--lines", "3", "--keep-running"},
		LogPath:  "logger.log",
	}, sbCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, cid); status.Code(err) == codes.OK {
		t.Errorf("starting a running container again succeeded")
	}
	var logText string
	for {
		b, _ := os.ReadFile(filepath.Join(logDir, "logger.log"))
		logText = string(b)
		if strings.Contains(logText, " stdout F stdout line 3\n") && strings.Contains(logText, " stderr F stderr line 3\n") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("container log never got its lines: %q", logText)
		}
		time.Sleep(50 * time.Millisecond)
	}

	stdout, _, err := rt.ExecSync(ctx, cid, []string{"/workload", "print", "from-exec"}, 30*time.Second)
	if err != nil || !strings.Contains(string(stdout), "arg[0]=from-exec\n") || !strings.Contains(string(stdout), "hostname=cri-plugin\n") {
		t.Errorf("ExecSync print = %q, %v", stdout, err)
	}
	// cri-client turns a non-zero exit into an error carrying the code.
	_, _, err = rt.ExecSync(ctx, cid, []string{"/workload", "exit", "--code", "3"}, 30*time.Second)
	var exit interface{ ExitStatus() int }
	if !errors.As(err, &exit) || exit.ExitStatus() != 3 {
		t.Errorf("ExecSync exit 3 = %v, want an exit error with status 3", err)
	}
	if _, _, err := rt.ExecSync(ctx, "no-such-container", []string{"/workload"}, 10*time.Second); status.Code(err) != codes.NotFound {
		t.Errorf("ExecSync in an unknown container: %v, want NotFound", err)
	}

	cs, err := rt.ContainerStatus(ctx, cid, false)
	if err != nil || cs.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("ContainerStatus = %v, %v", cs, err)
	}
	if err := rt.StopContainer(ctx, cid, 10); err != nil {
		t.Fatal(err)
	}
	cs, err = rt.ContainerStatus(ctx, cid, false)
	if err != nil || cs.Status.State != runtimeapi.ContainerState_CONTAINER_EXITED || cs.Status.ExitCode != 0 {
		t.Errorf("after StopContainer: %v, %v; want exited with 0 (the workload exits on SIGTERM)", cs, err)
	}
	if err := rt.RemoveContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.ContainerStatus(ctx, cid, false); status.Code(err) != codes.NotFound {
		t.Errorf("status of a removed container: %v, want NotFound", err)
	}
	if err := rt.StopPodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if err := rt.RemovePodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if err := rt.RemovePodSandbox(ctx, sb); err != nil {
		t.Errorf("removing a removed sandbox again: %v, want success (idempotent)", err)
	}
	sbs, err := rt.ListPodSandbox(ctx, nil)
	if err != nil || len(sbs) != 0 {
		t.Errorf("ListPodSandbox after removal = %v, %v", sbs, err)
	}
}
