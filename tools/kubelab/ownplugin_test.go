package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestOwnPluginExample builds examples/ownplugin — the module README.md's
// "Writing and testing your own plugin" walks through, a kubelab of a third
// party's with a store, a scheduler plugin and profile, and a runtime of
// its own — as a third party would (its own go.mod, kubelab by replace,
// modules resolved with -mod=mod outside any workspace), then checks that
// `plugins` lists its plugins and profile and that its store passes the
// store suite.
func TestOwnPluginExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example module and runs the store suite")
	}
	dir, err := filepath.Abs("../../examples/ownplugin")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "ownplugin")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build in %s: %v\n%s", dir, err, out)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ownplugin %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := run("plugins")
	for _, want := range []string{"counting", "PreferLabel", "myruntime", "prefer-label-scheduler", "PreferLabel(5)", "memory"} {
		if !strings.Contains(out, want) {
			t.Errorf("plugins lacks %q:\n%s", want, out)
		}
	}
	out = run("conform", "--suite", "store", "--store", "counting")
	if !strings.Contains(out, "Conformance PASSED") || !strings.Contains(out, "store:cas") {
		t.Errorf("conform --suite store --store counting:\n%s", out)
	}
}
