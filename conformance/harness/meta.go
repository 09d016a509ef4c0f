package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/kubelab/kubelab/spec"
)

// Outcome is what one run of a suite did to each capability: spec texts by
// capability label (CapabilityOf). A failed spec's entry is its text, ": "
// and the first line of its failure message; failures outside specs (a
// BeforeSuite, say) are under the key "(suite)".
type Outcome struct {
	Passed, Failed, Skipped map[string][]string
	// Output is the child's stdout and stderr.
	Output string
}

// FailedCapabilities returns the keys of o.Failed, sorted.
func (o Outcome) FailedCapabilities() []string {
	return slices.Sorted(func(yield func(string) bool) {
		for c := range o.Failed {
			if !yield(c) {
				return
			}
		}
	})
}

// Child says how RunChild runs a suite: which test of the current test
// binary, with what environment and flags.
type Child struct {
	// Test is the test function that runs the suite (RunSpecs); default
	// "TestSuite".
	Test string
	// Env is added to the environment, typically the variable that names
	// the target for that test.
	Env []string
	// Flags are added to the command line, e.g. "-ginkgo.label-filter=!Slow".
	Flags []string
	// Timeout is the child's -test.timeout; default 15 minutes.
	Timeout time.Duration
	// SysProcAttr, when set, configures the child process (a network
	// namespace of its own, a death signal).
	SysProcAttr *syscall.SysProcAttr
	// Started, when set, is called with the child's PID once it started.
	Started func(pid int)
}

// RunChild runs one test of the current test binary again, in a child
// process, with a Ginkgo JSON report, and returns what the report says. It
// fails t when the child wrote no report, when it exited 0 although specs
// failed, or when it failed with no failed spec — a suite's exit status
// and its report must agree.
func RunChild(t testing.TB, c Child) Outcome {
	t.Helper()
	if c.Test == "" {
		c.Test = "TestSuite"
	}
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Minute
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "report.json")
	args := append([]string{"-test.run=^" + c.Test + "$", "-test.count=1", "-test.timeout=" + c.Timeout.String(),
		"-ginkgo.json-report=" + report}, c.Flags...)
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.SysProcAttr = c.SysProcAttr
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	runErr := cmd.Start()
	if runErr == nil {
		if c.Started != nil {
			c.Started(cmd.Process.Pid)
		}
		runErr = cmd.Wait()
	}
	what := strings.Join(append(slices.Clone(c.Env), c.Flags...), " ")
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("the suite (%s) wrote no report (%v); exit: %v; output:\n%s", what, err, runErr, tailLines(buf.String(), 60))
	}
	o, err := ParseReport(data)
	if err != nil {
		t.Fatalf("the suite (%s): %v", what, err)
	}
	o.Output = buf.String()
	if runErr == nil && len(o.Failed) > 0 {
		t.Errorf("the suite (%s) exited 0 although specs failed", what)
	}
	if runErr != nil && len(o.Failed) == 0 {
		t.Errorf("the suite (%s) failed (%v) with no failed spec; output:\n%s", what, runErr, tailLines(o.Output, 60))
	}
	return o
}

// ParseReport reads a Ginkgo JSON report (-ginkgo.json-report) into an
// Outcome (without Output).
func ParseReport(data []byte) (Outcome, error) {
	var reports []types.Report
	if err := json.Unmarshal(data, &reports); err != nil {
		return Outcome{}, fmt.Errorf("parsing the Ginkgo report: %w", err)
	}
	o := Outcome{Passed: map[string][]string{}, Failed: map[string][]string{}, Skipped: map[string][]string{}}
	for _, r := range reports {
		for _, sr := range r.SpecReports {
			if sr.LeafNodeType != types.NodeTypeIt {
				if sr.State.Is(types.SpecStateFailureStates) {
					o.Failed["(suite)"] = append(o.Failed["(suite)"], fmt.Sprintf("%s: %s", sr.LeafNodeType, sr.Failure.Message))
				}
				continue
			}
			c := CapabilityOf(sr.Labels())
			switch {
			case sr.State.Is(types.SpecStateFailureStates):
				msg, _, _ := strings.Cut(sr.Failure.Message, "\n")
				o.Failed[c] = append(o.Failed[c], sr.FullText()+": "+msg)
			case sr.State == types.SpecStatePassed:
				o.Passed[c] = append(o.Passed[c], sr.FullText())
			default:
				o.Skipped[c] = append(o.Skipped[c], sr.FullText())
			}
		}
	}
	return o, nil
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Broken is a deliberately broken plugin as the meta-test sees it: the
// target name a suite run knows it by, and the capabilities it must fail.
type Broken struct {
	// Name is the plugin's (or profile's) name.
	Name string
	// CaughtBy is the capability whose specs must fail against it.
	CaughtBy spec.Capability
	// AlsoFails are capabilities that may fail too, by the nature of the
	// bug; no other capability may.
	AlsoFails []spec.Capability
}

// ExpectCaught checks the outcome of a suite run against broken plugin b:
// at least one spec of b.CaughtBy failed, and no spec of any capability
// but b.CaughtBy and b.AlsoFails did. A suite that passes a broken plugin
// is a broken suite; one that fails it everywhere says nothing about where.
func ExpectCaught(t testing.TB, b Broken, o Outcome) {
	t.Helper()
	allowed := map[string]bool{string(b.CaughtBy): true}
	for _, c := range b.AlsoFails {
		allowed[string(c)] = true
	}
	failed := o.FailedCapabilities()
	for _, c := range failed {
		t.Logf("failed %s: %d spec(s), e.g. %s", c, len(o.Failed[c]), o.Failed[c][0])
	}
	if len(o.Failed[string(b.CaughtBy)]) == 0 {
		t.Errorf("no spec of %s failed against %s (passed: %v)", b.CaughtBy, b.Name, o.Passed[string(b.CaughtBy)])
	}
	for _, c := range failed {
		if !allowed[c] {
			t.Errorf("specs of %s failed against %s, which should only fail %v:\n  %s",
				c, b.Name, slices.Sorted(mapKeys(allowed)), strings.Join(o.Failed[c], "\n  "))
		}
	}
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// ExpectAllCaught is the meta-test of a suite: for every entry of a catalog
// of broken plugins, in parallel subtests named after them, it runs the
// suite against the entry (run, usually RunChild with the entry's target)
// and checks with ExpectCaught that the entry fails exactly its
// capabilities. describe tells what each entry must fail; capabilities
// are the suite's, and a catalog naming any other capability fails.
// Under -short it skips: it runs the suite once per entry.
func ExpectAllCaught[B any](t *testing.T, capabilities spec.Capabilities, catalog []B, describe func(B) Broken, run func(t *testing.T, b B) Outcome) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the suite once per broken plugin")
	}
	if len(catalog) == 0 {
		t.Fatal("an empty catalog of broken plugins proves nothing")
	}
	for _, entry := range catalog {
		b := describe(entry)
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel() // suites mostly wait
			for _, c := range append([]spec.Capability{b.CaughtBy}, b.AlsoFails...) {
				if !slices.Contains(capabilities, c) {
					t.Fatalf("the catalog names %q, which is no capability of the suite", c)
				}
			}
			ExpectCaught(t, b, run(t, entry))
		})
	}
}
