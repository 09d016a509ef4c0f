package runner_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kubelab/kubelab/conformance/runner"
	"github.com/kubelab/kubelab/fakes/brokenstore"
)

// TestStoreSuiteCatchesABrokenStore runs the real store suite through the
// runner: the memory store passes the compare-and-swap specs, the store
// that ignores the expected revision fails them, and the run fails.
func TestStoreSuiteCatchesABrokenStore(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the store suite")
	}
	var out strings.Builder
	rep, err := testRunner().Run(context.Background(), runner.Options{
		Suites:      []string{"store"},
		Targets:     map[string][]string{"store": {"memory", brokenstore.IgnoresExpectedRevision}},
		LabelFilter: "store:cas",
		Out:         &out,
	})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if !rep.Failed() || rep.ExitCode() == 0 {
		t.Fatalf("a run with a broken store passed:\n%s", out.String())
	}
	if c := cell(t, rep, "store:cas", "memory"); c.Status != runner.CellPassed {
		t.Errorf("store:cas × memory = %+v, want passed", c)
	}
	if c := cell(t, rep, "store:cas", brokenstore.IgnoresExpectedRevision); c.Status != runner.CellFailed {
		t.Errorf("store:cas × %s = %+v, want failed", brokenstore.IgnoresExpectedRevision, c)
	}
	for _, f := range rep.Failures() {
		if f.Target != brokenstore.IgnoresExpectedRevision || f.Spec.Capability != "store:cas" || f.Spec.Message == "" {
			t.Errorf("unexpected failure %+v", f)
		}
	}
}
