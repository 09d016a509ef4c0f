package cli_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/tools/kubelab/cli"
)

func TestBenchRuntimeRejectsBadInput(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the command checks for root first")
	}
	var out, errOut bytes.Buffer
	_, err := cli.RunBenchRuntime(context.Background(), cli.BenchRuntimeOptions{Runtimes: []string{"process"}, Images: t.TempDir()}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "make images") {
		t.Errorf("no image archives: %v, want an error saying to run make images", err)
	}
	images := t.TempDir()
	if err := os.WriteFile(filepath.Join(images, "x.tar"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = cli.RunBenchRuntime(context.Background(), cli.BenchRuntimeOptions{Runtimes: []string{"cri-o"}, Images: images}, &out, &errOut)
	if !errors.Is(err, spec.ErrInvalid) || !strings.Contains(err.Error(), "cri-o") {
		t.Errorf("unknown runtime: %v, want ErrInvalid naming it", err)
	}
}
