package runtime_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/conformance/runtime"
	"github.com/kubelab/kubelab/fakes/brokenruntime"
	"github.com/kubelab/kubelab/plugins/runtime/process"
	"github.com/kubelab/kubelab/spec"
)

// outcome is what one run of the suite did to each capability.
type outcome struct {
	passed, failed, skipped map[string][]string // capability -> spec names
	output                  string              // the child's stdout and stderr
}

// runSuite runs TestSuite in a child process of this test binary against
// the named target, with extra environment, and returns what its JSON
// report says, with extra Ginkgo flags. sys, when set, configures the
// child process; started, when
// set, is called with the child's PID as soon as it has started.
func runSuite(t *testing.T, target string, env, flags []string, sys *syscall.SysProcAttr, started func(pid int)) outcome {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(exe, append([]string{"-test.run=^TestSuite$", "-test.count=1", "-test.timeout=15m", "-ginkgo.json-report=" + report}, flags...)...)
	cmd.Env = append(append(os.Environ(), targetEnv+"="+target), env...)
	cmd.SysProcAttr = sys
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	runErr := cmd.Start()
	if runErr == nil {
		if started != nil {
			started(cmd.Process.Pid)
		}
		runErr = cmd.Wait()
	}
	out := buf.Bytes()
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("the suite against %s wrote no report (%v); exit: %v; output:\n%s", target, err, runErr, tailOf(out))
	}
	var reports []types.Report
	if err := json.Unmarshal(data, &reports); err != nil {
		t.Fatalf("parsing the report of %s: %v", target, err)
	}
	o := outcome{passed: map[string][]string{}, failed: map[string][]string{}, skipped: map[string][]string{}, output: string(out)}
	for _, r := range reports {
		for _, sr := range r.SpecReports {
			if sr.LeafNodeType != types.NodeTypeIt {
				if sr.State.Is(types.SpecStateFailureStates) {
					o.failed["(suite)"] = append(o.failed["(suite)"], fmt.Sprintf("%s: %s", sr.LeafNodeType, sr.Failure.Message))
				}
				continue
			}
			capability := harness.CapabilityOf(sr.Labels())
			switch {
			case sr.State.Is(types.SpecStateFailureStates):
				o.failed[capability] = append(o.failed[capability], sr.FullText()+": "+firstLine(sr.Failure.Message))
			case sr.State == types.SpecStatePassed:
				o.passed[capability] = append(o.passed[capability], sr.FullText())
			default:
				o.skipped[capability] = append(o.skipped[capability], sr.FullText())
			}
		}
	}
	if runErr == nil && len(o.failed) > 0 {
		t.Errorf("the suite against %s exited 0 although specs failed", target)
	}
	if runErr != nil && len(o.failed) == 0 {
		t.Errorf("the suite against %s failed (%v) with no failed spec; output:\n%s", target, runErr, tailOf(out))
	}
	return o
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func tailOf(out []byte) string {
	lines := strings.Split(string(out), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	return strings.Join(lines, "\n")
}

// TestBrokenRuntimesAreCaught runs the suite against every broken runtime
// of fakes/brokenruntime, each in a child process, and checks that each
// fails on the capability meant to catch it and on no capability it has
// no business failing.
func TestBrokenRuntimesAreCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite once per broken runtime")
	}
	known := map[spec.Capability]bool{}
	for _, c := range runtime.Capabilities() {
		known[c] = true
	}
	for _, b := range brokenruntime.Catalog(process.Plugin()) {
		t.Run(b.Plugin.Name, func(t *testing.T) {
			t.Parallel() // the suite mostly waits for containers
			allowed := map[string]bool{}
			for _, c := range append([]spec.Capability{b.CaughtBy}, b.AlsoFails...) {
				if !known[c] {
					t.Fatalf("the catalog names %q, which is no capability of the suite", c)
				}
				allowed[string(c)] = true
			}
			o := runSuite(t, b.Plugin.Name, nil, nil, nil, nil)
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
				t.Errorf("no spec of %s failed against %s (passed: %v)", b.CaughtBy, b.Plugin.Name, o.passed[string(b.CaughtBy)])
			}
			for _, c := range caps {
				if !allowed[c] {
					t.Errorf("specs of %s failed against %s, which should only fail %v:\n  %s",
						c, b.Plugin.Name, sortedKeys(allowed), strings.Join(o.failed[c], "\n  "))
				}
			}
		})
	}
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
