package harness_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
)

// recorder is a testing.TB that records errors instead of failing.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper()             {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Errorf(format string, a ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, a...))
}

func outcome(failed ...string) harness.Outcome {
	o := harness.Outcome{Passed: map[string][]string{}, Failed: map[string][]string{}}
	for _, c := range failed {
		o.Failed[c] = append(o.Failed[c], "a spec of "+c)
	}
	return o
}

func TestExpectCaught(t *testing.T) {
	b := harness.Broken{Name: "broken-x", CaughtBy: "store:cas", AlsoFails: []spec.Capability{"store:crud"}}
	for _, tc := range []struct {
		name   string
		o      harness.Outcome
		errors []string // substrings, one per expected error
	}{
		{"caught by its capability", outcome("store:cas"), nil},
		{"also fails what the catalog allows", outcome("store:cas", "store:crud"), nil},
		{"passes: the suite has no teeth", outcome(), []string{"no spec of store:cas failed against broken-x"}},
		{"caught elsewhere only", outcome("store:watch"), []string{"no spec of store:cas failed", "specs of store:watch failed against broken-x"}},
		{"fails too much", outcome("store:cas", "(suite)"), []string{"specs of (suite) failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			harness.ExpectCaught(r, b, tc.o)
			if len(r.errors) != len(tc.errors) {
				t.Fatalf("errors %q, want %d matching %q", r.errors, len(tc.errors), tc.errors)
			}
			for i, want := range tc.errors {
				if !strings.Contains(r.errors[i], want) {
					t.Errorf("error %d = %q, want it to contain %q", i, r.errors[i], want)
				}
			}
		})
	}
}

func TestParseReport(t *testing.T) {
	report := `[{"SpecReports": [
	  {"LeafNodeType": "It", "LeafNodeText": "ok", "LeafNodeLabels": ["store", "store:crud"], "State": "passed"},
	  {"LeafNodeType": "It", "LeafNodeText": "bad", "LeafNodeLabels": ["store", "store:cas"], "State": "failed",
	   "Failure": {"Message": "expected 1\nto equal 2"}},
	  {"LeafNodeType": "It", "LeafNodeText": "unclaimed", "LeafNodeLabels": ["store", "store:ttl"], "State": "skipped"},
	  {"LeafNodeType": "BeforeSuite", "State": "failed", "Failure": {"Message": "no store"}}
	]}]`
	o, err := harness.ParseReport([]byte(report))
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Passed["store:crud"]; len(got) != 1 || got[0] != "ok" {
		t.Errorf("Passed = %v", o.Passed)
	}
	if got := o.Failed["store:cas"]; len(got) != 1 || got[0] != "bad: expected 1" {
		t.Errorf("Failed[store:cas] = %q", got)
	}
	if got := o.Failed["(suite)"]; len(got) != 1 || !strings.Contains(got[0], "no store") {
		t.Errorf("Failed[(suite)] = %q", got)
	}
	if got := o.Skipped["store:ttl"]; len(got) != 1 {
		t.Errorf("Skipped = %v", o.Skipped)
	}
	if _, err := harness.ParseReport([]byte("not json")); err == nil {
		t.Error("ParseReport of garbage succeeded")
	}
}
