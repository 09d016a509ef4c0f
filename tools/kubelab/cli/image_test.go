package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubelab/kubelab/spec/ociimage"
)

func TestImageBinaryAndCheck(t *testing.T) {
	if err := ociimage.CheckStatic(ociimage.DefaultBusybox); err != nil {
		t.Skipf("no static busybox: %v", err)
	}
	out := filepath.Join(t.TempDir(), "bb.tar")
	code, stdout, stderr, _ := kubelab(t, "image", "binary", "kubelab.local/bb:1", ociimage.DefaultBusybox, "-o", out, "--", "sh")
	if code != 0 || !strings.Contains(stdout, "kubelab.local/bb:1") {
		t.Fatalf("image binary = %d, %q, %q", code, stdout, stderr)
	}
	code, stdout, stderr, _ = kubelab(t, "image", "check", out)
	if code != 0 || !strings.Contains(stdout, "kubelab.local/bb:1") {
		t.Errorf("image check = %d, %q, %q", code, stdout, stderr)
	}
}

func TestImageBinaryRejectsDynamic(t *testing.T) {
	code, _, stderr, _ := kubelab(t, "image", "binary", "x", "/bin/ls", "-o", filepath.Join(t.TempDir(), "x.tar"))
	if code == 0 || !strings.Contains(stderr, "dynamically linked") {
		t.Errorf("image binary of /bin/ls = %d, %q", code, stderr)
	}
}

func TestImageBuildNeedsTheWorkload(t *testing.T) {
	code, _, stderr, _ := kubelab(t, "image", "build", "--workload", filepath.Join(t.TempDir(), "missing"), "-o", t.TempDir())
	if code == 0 || !strings.Contains(stderr, "make images") {
		t.Errorf("image build without a workload binary = %d, %q", code, stderr)
	}
}
