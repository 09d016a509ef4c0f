package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// kubelab builds the kubelab binary once per test and returns its path.
func build(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the kubelab binary")
	}
	bin := filepath.Join(t.TempDir(), "kubelab")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinary checks the real binary's wiring: built-in plugins, the store
// suite, and the re-execution of the binary as conformance children.
func TestBinary(t *testing.T) {
	bin := build(t)
	run := func(args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("kubelab %v: %v", args, err)
		}
		return code, string(out)
	}

	if code, out := run("plugins"); code != 0 || !strings.Contains(out, "memory") || !strings.Contains(out, "etcd") {
		t.Errorf("kubelab plugins: exit %d\n%s", code, out)
	}
	// The broken plugins are listed only with --all (and still run by
	// name, below).
	if code, out := run("plugins"); code != 0 || strings.Contains(out, "broken-ignores-expected-revision") || !strings.Contains(out, "--all lists them") {
		t.Errorf("kubelab plugins lists broken plugins: exit %d\n%s", code, out)
	}
	if code, out := run("plugins", "--all"); code != 0 || !strings.Contains(out, "broken-ignores-expected-revision") ||
		!strings.Contains(out, "broken-no-exit-codes") || strings.Contains(out, "--all lists them") {
		t.Errorf("kubelab plugins --all: exit %d\n%s", code, out)
	}
	if code, out := run("version"); code != 0 || !strings.HasPrefix(out, "kubelab ") {
		t.Errorf("kubelab version: exit %d\n%s", code, out)
	}
	code, out := run("conform", "--list", "--suite", "store", "--store", "memory,etcd")
	if code != 0 || !strings.Contains(out, "store suite: ") || !strings.Contains(out, "targets memory, etcd") || !strings.Contains(out, "[store:crud]") {
		t.Errorf("kubelab conform --list: exit %d\n%s", code, out)
	}
	if code, out := run("conform", "--store", "nope"); code != 2 {
		t.Errorf("kubelab conform --store nope: exit %d, want 2\n%s", code, out)
	}

	// The runtime suite's flags name its targets; broken runtimes are
	// registered but never default targets.
	code, out = run("conform", "--list", "--suite", "runtime", "--runtime", "process,process-grpc,broken-no-exit-codes",
		"--cri-endpoint", "unix:///run/containerd/containerd.sock")
	if code != 0 || !strings.Contains(out, "targets process, process-grpc, broken-no-exit-codes, cri@unix:///run/containerd/containerd.sock") ||
		!strings.Contains(out, "[runtime:exit-code]") {
		t.Errorf("kubelab conform --list --suite runtime with --runtime and --cri-endpoint: exit %d\n%s", code, out)
	}
	if code, out = run("conform", "--list", "--suite", "runtime"); code != 0 || strings.Contains(out, "broken-") || !strings.Contains(out, "targets process, process-grpc") {
		t.Errorf("default runtime targets: exit %d\n%s", code, out)
	}
	if code, out := run("conform", "--suite", "runtime", "--cri-endpoint", "/run/containerd/containerd.sock"); code != 2 {
		t.Errorf("kubelab conform --cri-endpoint without unix://: exit %d, want 2\n%s", code, out)
	}

	// Broken stores are registered but never default targets.
	code, out = run("conform", "--list", "--suite", "store")
	if code != 0 || strings.Contains(out, "broken-") || !strings.Contains(out, "memory") {
		t.Errorf("default targets: exit %d\n%s", code, out)
	}
	// Named, one fails the suite and the command.
	dir := t.TempDir()
	code, out = run("conform", "--store", "memory,broken-ignores-expected-revision", "--label-filter", "store:cas", "--report", dir)
	if code != 1 || !strings.Contains(out, "Conformance FAILED") {
		t.Errorf("kubelab conform against a broken store: exit %d, want 1\n%s", code, out)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil || !strings.Contains(string(md), "broken-ignores-expected-revision") || !strings.Contains(string(md), "❌") {
		t.Errorf("report.md (%v):\n%s", err, md)
	}
	// --rerun-failed runs the failures only: they fail again.
	code, out = run("conform", "--rerun-failed", dir)
	if code != 1 || strings.Contains(out, "target memory") {
		t.Errorf("kubelab conform --rerun-failed: exit %d, want 1 without memory\n%s", code, out)
	}
}
