package scheduler_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/conformance/scheduler"
	"github.com/kubelab/kubelab/fakes/brokenscheduler"
	"github.com/kubelab/kubelab/spec"
)

// outcome is what one run of the suite did to each capability.
type outcome struct {
	passed, failed map[string][]string // capability -> spec names
}

// runSuite runs TestSuite in a child process of this test binary against
// the named profile, without the Slow specs, with extra environment, and
// returns what its JSON report says.
func runSuite(t *testing.T, target string, env ...string) outcome {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(exe, "-test.run=^TestSuite$", "-test.count=1", "-test.timeout=10m",
		"-ginkgo.label-filter=!Slow", "-ginkgo.json-report="+report)
	cmd.Env = append(append(os.Environ(), targetEnv+"="+target), env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	runErr := cmd.Run()
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("the suite against %s wrote no report (%v); exit: %v; output:\n%s", target, err, runErr, buf.String())
	}
	var reports []types.Report
	if err := json.Unmarshal(data, &reports); err != nil {
		t.Fatalf("parsing the report of %s: %v", target, err)
	}
	o := outcome{passed: map[string][]string{}, failed: map[string][]string{}}
	for _, r := range reports {
		for _, sr := range r.SpecReports {
			if sr.LeafNodeType != types.NodeTypeIt {
				if sr.State.Is(types.SpecStateFailureStates) {
					o.failed["(suite)"] = append(o.failed["(suite)"], fmt.Sprintf("%s: %s", sr.LeafNodeType, sr.Failure.Message))
				}
				continue
			}
			c := harness.CapabilityOf(sr.Labels())
			switch {
			case sr.State.Is(types.SpecStateFailureStates):
				msg, _, _ := strings.Cut(sr.Failure.Message, "\n")
				o.failed[c] = append(o.failed[c], sr.FullText()+": "+msg)
			case sr.State == types.SpecStatePassed:
				o.passed[c] = append(o.passed[c], sr.FullText())
			}
		}
	}
	if runErr == nil && len(o.failed) > 0 {
		t.Errorf("the suite against %s exited 0 although specs failed", target)
	}
	if runErr != nil && len(o.failed) == 0 {
		t.Errorf("the suite against %s failed (%v) with no failed spec; output:\n%s", target, runErr, buf.String())
	}
	return o
}

// TestBrokenSchedulersAreCaught runs the suite (without its Slow specs)
// against every broken scheduler of fakes/brokenscheduler, each in a child
// process, and checks that each fails on the capability meant to catch it
// and on no capability it has no business failing.
func TestBrokenSchedulersAreCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite once per broken scheduler")
	}
	known := map[spec.Capability]bool{}
	for _, c := range scheduler.Capabilities() {
		known[c] = true
	}
	for _, b := range brokenscheduler.Catalog() {
		t.Run(b.Profile.SchedulerName, func(t *testing.T) {
			t.Parallel() // the suite mostly waits
			allowed := map[string]bool{}
			for _, c := range append([]spec.Capability{b.CaughtBy}, b.AlsoFails...) {
				if !known[c] {
					t.Fatalf("the catalog names %q, which is no capability of the suite", c)
				}
				allowed[string(c)] = true
			}
			o := runSuite(t, b.Profile.SchedulerName)
			caps := slices.Sorted(func(yield func(string) bool) {
				for c := range o.failed {
					if !yield(c) {
						return
					}
				}
			})
			for _, c := range caps {
				t.Logf("failed %s: %d spec(s), e.g. %s", c, len(o.failed[c]), o.failed[c][0])
			}
			if len(o.failed[string(b.CaughtBy)]) == 0 {
				t.Errorf("no spec of %s failed against %s (passed: %v)", b.CaughtBy, b.Profile.SchedulerName, o.passed[string(b.CaughtBy)])
			}
			for _, c := range caps {
				if !allowed[c] {
					t.Errorf("specs of %s failed against %s, which should only fail %v:\n  %s",
						c, b.Profile.SchedulerName, slices.Sorted(func(yield func(string) bool) {
							for k := range allowed {
								if !yield(k) {
									return
								}
							}
						}), strings.Join(o.failed[c], "\n  "))
				}
			}
		})
	}
}
