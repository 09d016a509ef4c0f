// The golden-list sync test: conformance.yaml beside this file must name
// every spec of every suite, with the capability the spec proves and a
// description written as MUST statements, and nothing else.
package conformance_test

import (
	"context"
	"os"
	"testing"

	"github.com/kubelab/kubelab/conformance/runner"
	"github.com/kubelab/kubelab/plugins/builtin"
)

// goldenFile is the golden list, relative to this package.
const goldenFile = "conformance.yaml"

// TestMain lets the runner re-execute this test binary to list the specs.
func TestMain(m *testing.M) {
	runner.RunChildIfRequested(builtin.Registry())
	os.Exit(m.Run())
}

func TestGoldenListIsInSync(t *testing.T) {
	// A dry run through the runner, exactly as `kubelab conform --list`
	// does: every suite against its default targets, nothing runs.
	rep, err := runner.Run(context.Background(), builtin.Registry(), runner.Options{List: true})
	if err != nil {
		t.Fatalf("listing the specs: %v", err)
	}
	for _, f := range rep.Failures() {
		t.Errorf("listing suite %s on %s failed: %s", f.Suite, f.Target, f.Spec.Message)
	}
	code := runner.GoldenFromReport(rep)
	if len(code) == 0 {
		t.Fatal("the listing found no specs")
	}
	for _, e := range code {
		if e.Capability == "" {
			t.Errorf("suite %s: spec %q has no capability label (harness.Labels)", e.Suite, e.Name)
		}
	}

	golden, err := runner.LoadGolden(goldenFile)
	if err != nil {
		t.Fatalf("%v\n(to start one: go run ./tools/kubelab conform --list --golden > conformance/%s)", err, goldenFile)
	}
	if diff := runner.CompareGolden(golden, code); !diff.Empty() {
		t.Errorf("conformance/%s and the suites disagree.\n%s\n"+
			"To print the entries to add: go run ./tools/kubelab conform --list --golden",
			goldenFile, diff.String())
	}
}
