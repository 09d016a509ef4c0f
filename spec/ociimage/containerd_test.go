package ociimage_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubelab/kubelab/spec/ociimage"
)

// TestContainerdImportsAndRuns imports the test images into a private
// containerd (its own root, state and socket) and runs busybox and the
// workload with runc. It runs when containerd, ctr and runc are on PATH
// and the test runs as root (Debian's containerd and runc packages), and is
// skipped otherwise.
func TestContainerdImportsAndRuns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, bin := range []string{"containerd", "ctr", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("no %s on PATH", bin)
		}
	}
	needBusybox(t)
	wl := buildWorkload(t)
	built, err := ociimage.BuildTestImages(t.TempDir(), wl, "")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "kl-ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "containerd.sock")
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte(`version = 2
root = "`+filepath.Join(dir, "root")+`"
state = "`+filepath.Join(dir, "state")+`"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "`+sock+`"
`), 0o600)
	var log bytes.Buffer
	daemon := exec.Command("containerd", "--config", cfg)
	daemon.Stdout, daemon.Stderr = &log, &log
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		daemon.Process.Kill()
		daemon.Wait()
		if t.Failed() {
			t.Logf("containerd log:\n%s", log.String())
		}
	})
	ctr := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ctr", append([]string{"--address", sock, "--namespace", "kubelab-test"}, args...)...).CombinedOutput()
		return string(out), err
	}
	for deadline := time.Now().Add(time.Minute); ; {
		if _, err := ctr("version"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("containerd did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, b := range built {
		if out, err := ctr("images", "import", b.Path); err != nil || !strings.Contains(out, b.Name) {
			t.Fatalf("ctr images import %s: %v\n%s", b.Path, err, out)
		}
	}
	out, err := ctr("run", "--rm", ociimage.BusyboxImageName, "kl-busybox", "sh", "-c", "echo hello; id -u")
	if err != nil || out != "hello\n0\n" {
		t.Errorf("busybox in containerd: %q, %v", out, err)
	}
	out, err = ctr("run", "--rm", ociimage.WorkloadImageName, "kl-workload", "/workload", "print", "x")
	if err != nil || !strings.Contains(out, "arg[0]=x\n") || !strings.Contains(out, "cwd=/\n") {
		t.Errorf("workload in containerd: %q, %v", out, err)
	}
}
