package process

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/plugins/runtime/imagestore"
	"github.com/kubelab/kubelab/spec"
)

// busyboxRootfs is a root filesystem made from the host's static busybox,
// built once by TestMain.
var busyboxRootfs string

// hostNamespaces are the test process's namespaces when it started.
var hostNamespaces = map[string]string{}

func TestMain(m *testing.M) {
	RunInitIfRequested()
	code := func() int {
		if os.Geteuid() != 0 {
			fmt.Println("process runtime tests need root; skipping")
			return 0
		}
		for _, ns := range []string{"mnt", "net", "uts", "ipc", "pid_for_children"} {
			hostNamespaces[ns], _ = os.Readlink("/proc/self/ns/" + ns)
		}
		dir, err := os.MkdirTemp("", "kubelab-process-rootfs-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		if err := buildBusyboxRootfs(dir); err != nil {
			fmt.Println("build rootfs:", err)
			return 1
		}
		busyboxRootfs = dir
		return m.Run()
	}()
	os.Exit(code)
}

// buildBusyboxRootfs copies /bin/busybox into dir/bin with one relative
// symlink per applet.
func buildBusyboxRootfs(dir string) error {
	bin := filepath.Join(dir, "bin")
	for _, d := range []string{bin, filepath.Join(dir, "tmp"), filepath.Join(dir, "etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), b, 0o755); err != nil {
		return err
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return err
	}
	for _, a := range strings.Fields(string(out)) {
		if a == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(bin, a)); err != nil {
			return err
		}
	}
	return nil
}

// fakeImages is an ImageStore holding one busybox image.
type fakeImages struct{ rootfs string }

const busyboxRef = "docker.io/library/busybox:latest"

func (f fakeImages) image() imagestore.Image {
	return imagestore.Image{
		ID: "sha256:" + strings.Repeat("b", 64), RepoTags: []string{busyboxRef}, Size: 1,
		Config: ocispec.ImageConfig{Env: []string{"PATH=/bin", "FROM_IMAGE=yes"}, Cmd: []string{"sh"}},
	}
}

func (f fakeImages) List() ([]imagestore.Image, error) { return []imagestore.Image{f.image()}, nil }

func (f fakeImages) Get(ref string) (imagestore.Image, error) {
	if img := f.image(); ref == busyboxRef || ref == "busybox" || ref == img.ID {
		return img, nil
	}
	return imagestore.Image{}, fmt.Errorf("image %q: %w", ref, spec.ErrNotFound)
}

func (f fakeImages) Remove(string) error { return errors.New("read-only fake") }

func (f fakeImages) Unpacked(ctx context.Context, ref string) (string, error) {
	if _, err := f.Get(ref); err != nil {
		return "", err
	}
	return f.rootfs, nil
}

var testNet atomic.Int32

// testPodCIDR picks a random /24 in 10.200.0.0-10.249.255.0, so that test
// binaries running side by side rarely share a range.
func testPodCIDR() string {
	return fmt.Sprintf("10.%d.%d.0/24", 200+rand.IntN(50), rand.IntN(256))
}

// newTestRuntime returns a runtime with a bridge network over a pod range
// of its own; its sandboxes are removed when the test ends.
func newTestRuntime(t *testing.T) *Runtime {
	t.Helper()
	root := t.TempDir()
	n := testNet.Add(1)
	_, cidr, _ := net.ParseCIDR(testPodCIDR())
	inst := fmt.Sprintf("t%d-%d", os.Getpid(), n)
	r, err := New(context.Background(), Config{
		RootDir: root, Images: fakeImages{busyboxRootfs}, Instance: inst,
		Network: NewBridgeNetwork(inst, root, cidr),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeEverything(t, r) })
	return r
}

// removeEverything removes every sandbox of r (and so every container).
func removeEverything(t *testing.T, r *Runtime) {
	ctx := context.Background()
	sbs, _ := r.ListPodSandbox(ctx, nil)
	for _, s := range sbs {
		if err := r.RemovePodSandbox(ctx, s.Id); err != nil {
			t.Errorf("cleanup: remove sandbox %s: %v", s.Id, err)
		}
	}
}

var podSeq atomic.Int32

func sandboxConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: fmt.Sprintf("uid-%d", podSeq.Add(1))},
		Hostname: name + "-host",
		Labels:   map[string]string{"app": name},
		// What the kubelet asks for by default: a PID namespace per
		// container (CRI's zero value, POD, shares one; see pidns_test.go).
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
		}},
	}
}

func runSandbox(t *testing.T, r *Runtime, name string) (string, *runtimeapi.PodSandboxConfig) {
	t.Helper()
	cfg := sandboxConfig(name)
	cfg.LogDirectory = t.TempDir()
	id, err := r.RunPodSandbox(context.Background(), cfg, "")
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	return id, cfg
}

func containerConfig(name string, command ...string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: busyboxRef},
		Command:  command,
		LogPath:  name + ".log",
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
		}},
	}
}

// startContainer creates and starts a container.
func startContainer(t *testing.T, r *Runtime, sb string, sbCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	ctx := context.Background()
	id, err := r.CreateContainer(ctx, sb, cfg, sbCfg)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if err := r.StartContainer(ctx, id); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	return id
}

// waitExit waits for a container to exit and returns its status.
func waitExit(t *testing.T, r *Runtime, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := r.ContainerStatus(context.Background(), id, false)
		if err != nil {
			t.Fatalf("ContainerStatus: %v", err)
		}
		if resp.Status.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			return resp.Status
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s did not exit: %v", id, resp.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readLog(t *testing.T, sbCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sbCfg.LogDirectory, cfg.LogPath))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Errorf("%s: got %v (code %v), want code %v", what, err, status.Code(err), code)
	}
}
