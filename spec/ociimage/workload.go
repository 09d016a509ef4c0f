package ociimage

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// WorkloadPackage is the Go package of the test workload binary that the
// pause, workload and webserver images hold.
const WorkloadPackage = "github.com/kubelab/kubelab/tools/workload"

// BuildWorkload builds the workload binary (WorkloadPackage) statically into
// out with the Go toolchain that built the caller (GOROOT's go, else go on
// PATH). It must run inside kubelab's module, as tests and suites do. It
// fails, wrapping exec.ErrNotFound, when no Go toolchain is found, and with
// the compiler's output when the build fails.
func BuildWorkload(ctx context.Context, out string) error {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			return fmt.Errorf("no go toolchain to build %s: %w", WorkloadPackage, err)
		}
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, WorkloadPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", WorkloadPackage, err, b)
	}
	return nil
}
