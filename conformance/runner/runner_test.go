package runner_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/reporters"

	"github.com/kubelab/kubelab/conformance/runner"
	"github.com/kubelab/kubelab/conformance/runner/runnertest"
	"github.com/kubelab/kubelab/fakes/brokenstore"
	"github.com/kubelab/kubelab/plugins/store/memory"
	"github.com/kubelab/kubelab/spec"
)

// TestMain makes this test binary a conformance child when the runner
// re-executes it.
func TestMain(m *testing.M) {
	testRunner().RunChildIfRequested()
	os.Exit(m.Run())
}

// testRunner runs the fake suite, and the real store suite over the
// memory store and the broken stores of fakes/brokenstore.
func testRunner() *runner.Runner {
	reg := spec.NewRegistry()
	spec.MustRegister(reg.RegisterStore(memory.Plugin()))
	for _, p := range brokenstore.Plugins(memory.Plugin()) {
		spec.MustRegister(reg.RegisterStore(p))
	}
	return &runner.Runner{Registry: reg, Suites: []runner.Suite{runnertest.Suite(), runner.StoreSuite()}}
}

// run runs the fake suite with opts and returns the report, what the
// children printed and which spec bodies ran.
func run(t *testing.T, opts runner.Options) (*runner.Report, string, []string) {
	t.Helper()
	marker := filepath.Join(t.TempDir(), "marker")
	t.Setenv(runnertest.MarkerEnv, marker)
	var out bytes.Buffer
	opts.Out = &out
	if opts.Suites == nil && opts.RerunFailed == "" {
		opts.Suites = []string{runnertest.SuiteName}
	}
	rep, err := testRunner().Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, out.String())
	}
	return rep, out.String(), runnertest.Ran(marker)
}

func targets(names ...string) map[string][]string {
	return map[string][]string{runnertest.SuiteName: names}
}

func target(t *testing.T, rep *runner.Report, name string) runner.TargetReport {
	t.Helper()
	for _, s := range rep.Suites {
		for _, tr := range s.Targets {
			if tr.Target.Name == name {
				return tr
			}
		}
	}
	t.Fatalf("no target %q in report", name)
	return runner.TargetReport{}
}

func specNamed(t *testing.T, tr runner.TargetReport, name string) runner.SpecResult {
	t.Helper()
	for _, s := range tr.Specs {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("target %q: no spec %q in %+v", tr.Target.Name, name, tr.Specs)
	return runner.SpecResult{}
}

func cell(t *testing.T, rep *runner.Report, capability, target string) runner.Cell {
	t.Helper()
	m := rep.Matrices()[0]
	i := slices.Index(m.Capabilities, capability)
	j := slices.Index(m.Targets, target)
	if i < 0 || j < 0 {
		t.Fatalf("no cell %s × %s in %+v", capability, target, m)
	}
	return m.Cells[i][j]
}

func TestPassingRunExitsZero(t *testing.T) {
	rep, out, ran := run(t, runner.Options{Targets: targets("good")})
	if rep.Failed() || rep.ExitCode() != 0 {
		t.Fatalf("a passing target failed: %+v\n%s", rep, out)
	}
	if !strings.Contains(out, "=== fake suite, target good ===") {
		t.Errorf("progress has no header for the child:\n%s", out)
	}
	if !strings.Contains(out, "Ran 4 of 4 Specs") {
		t.Errorf("Ginkgo's progress was not streamed:\n%s", out)
	}
	if len(ran) != 4 {
		t.Errorf("ran %v, want the 4 specs", ran)
	}
	tr := target(t, rep, "good")
	if got := tr.Capabilities; !slices.Equal(got, []string{"fake:ttl"}) {
		t.Errorf("claimed capabilities = %v", got)
	}
	for _, s := range tr.Specs {
		if s.State != runner.StatePassed {
			t.Errorf("spec %q: state %s, want passed", s.Name, s.State)
		}
	}
}

func TestFailingTargetIsReportedEverywhere(t *testing.T) {
	dir := t.TempDir()
	junit := filepath.Join(dir, "junit.xml")
	rep, out, _ := run(t, runner.Options{Targets: targets("good", "bad"), ReportDir: dir, JUnit: junit})
	if !rep.Failed() || rep.ExitCode() == 0 {
		t.Fatalf("a failing target passed:\n%s", out)
	}
	bad := target(t, rep, "bad")
	rt := specNamed(t, bad, "fake round-trips values")
	if rt.State != runner.StateFailed || !strings.Contains(rt.Message, "the value came back different") {
		t.Errorf("failed spec = %+v", rt)
	}
	if rt.Capability != "fake:basic" || !strings.Contains(rt.Location, "runnertest/fake.go:") {
		t.Errorf("failed spec capability/location = %q, %q", rt.Capability, rt.Location)
	}
	if s := specNamed(t, bad, "fake honours TTLs"); s.State != runner.StateSkipped || !s.Unclaimed {
		t.Errorf("unclaimed spec = %+v", s)
	}

	for _, tc := range []struct {
		capability, target string
		status             runner.CellStatus
	}{
		{"fake:basic", "good", runner.CellPassed},
		{"fake:basic", "bad", runner.CellFailed},
		{"fake:ttl", "good", runner.CellPassed},
		{"fake:ttl", "bad", runner.CellSkipped},
		{"fake:escape", "bad", runner.CellFailed},
	} {
		if c := cell(t, rep, tc.capability, tc.target); c.Status != tc.status {
			t.Errorf("cell %s × %s = %+v, want %s", tc.capability, tc.target, c, tc.status)
		}
	}
	if c := cell(t, rep, "fake:basic", "bad"); c.Failed != 1 || c.Passed != 1 {
		t.Errorf("fake:basic × bad counts = %+v, want 1 failed 1 passed", c)
	}
	if c := cell(t, rep, "fake:ttl", "bad"); !c.AllUnclaimed() {
		t.Errorf("fake:ttl × bad = %+v, want skipped as unclaimed", c)
	}
	if m := rep.Matrices()[0]; !slices.Equal(m.Capabilities, []string{"fake:basic", "fake:ttl", "fake:escape"}) {
		t.Errorf("rows = %v, want the suite's order", m.Capabilities)
	}

	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	md := read("report.md")
	for _, want := range []string{
		"| capability | good | bad |",
		"| `fake:basic` | ✅ 2 passed | ❌ 1/2 failed |",
		"⏭ 1 skipped (unclaimed)",
		"## Failures (2)",
		"fake round-trips values",
		"the value came back different",
		"target **bad**",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	if !strings.Contains(md, "````text\n"+runnertest.HostileMessage) {
		t.Errorf("report.md does not fence the hostile message safely:\n%s", md)
	}

	html := read("report.html")
	if strings.Contains(html, "<script>") || strings.Contains(html, "<b>html</b>") {
		t.Errorf("report.html embeds unescaped text")
	}
	for _, want := range []string{"&lt;script&gt;", "fake round-trips values", `class="failed"`, "❌", "<style>"} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}

	var suites reporters.JUnitTestSuites
	if err := xml.Unmarshal([]byte(read("junit.xml")), &suites); err != nil {
		t.Fatalf("junit.xml: %v", err)
	}
	if len(suites.TestSuites) != 2 || suites.Failures != 2 {
		t.Fatalf("junit.xml: %d suites, %d failures; want 2 and 2", len(suites.TestSuites), suites.Failures)
	}
	if suites.TestSuites[1].Name != "fake [bad]" {
		t.Errorf("junit suite name = %q, want the target in it", suites.TestSuites[1].Name)
	}
	var failed []string
	for _, tc := range suites.TestSuites[1].TestCases {
		if tc.Failure != nil {
			failed = append(failed, tc.Name+": "+tc.Failure.Message)
		}
	}
	if len(failed) != 2 || !strings.Contains(strings.Join(failed, "\n"), "the value came back different") {
		t.Errorf("junit failures = %q", failed)
	}

	back, err := runner.ReadReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Failed() || len(back.Failures()) != 2 {
		t.Errorf("report read back: failed=%v, %d failures", back.Failed(), len(back.Failures()))
	}
	// JUnit from a report read back is synthesized from its results.
	junit2 := filepath.Join(t.TempDir(), "again.xml")
	if err := back.WriteJUnit(junit2); err != nil {
		t.Fatal(err)
	}
	var again reporters.JUnitTestSuites
	data, _ := os.ReadFile(junit2)
	if err := xml.Unmarshal(data, &again); err != nil || again.Failures != 2 || again.TestSuites[1].Name != "fake [bad]" || !strings.Contains(string(data), "the value came back different") {
		t.Errorf("JUnit of a report read back (%v):\n%s", err, data)
	}

	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fake suite", "FAIL 1/2 failed", "SKIP 1 skipped (unclaimed)", "Conformance FAILED", "FAILED fake [bad] fake round-trips values"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text matrix lacks %q:\n%s", want, text.String())
		}
	}
}

func TestListRunsNothing(t *testing.T) {
	rep, _, ran := run(t, runner.Options{List: true, Targets: targets("good", "crash", "hang")})
	if len(ran) != 0 {
		t.Errorf("a listing ran spec bodies: %v", ran)
	}
	if rep.Failed() || !rep.DryRun {
		t.Errorf("a listing failed or is not a dry run: %+v", rep)
	}
	for _, name := range []string{"good", "crash", "hang"} {
		tr := target(t, rep, name)
		if len(tr.Specs) != 4 {
			t.Errorf("target %s: %d specs listed, want 4", name, len(tr.Specs))
		}
		for _, s := range tr.Specs {
			if s.State != runner.StateListed {
				t.Errorf("target %s: %q in state %s, want listed", name, s.Name, s.State)
			}
		}
	}
	if c := cell(t, rep, "fake:ttl", "good"); c.Status != runner.CellListed {
		t.Errorf("listed cell = %+v", c)
	}
}

func TestFiltersSelectSpecs(t *testing.T) {
	rep, _, ran := run(t, runner.Options{Targets: targets("good"), LabelFilter: "fake:ttl || fake:escape", Skip: []string{"escapes"}})
	if !slices.Equal(ran, []string{"honours_TTLs"}) {
		t.Errorf("ran %v, want only the TTL spec", ran)
	}
	if tr := target(t, rep, "good"); len(tr.Specs) != 1 {
		t.Errorf("report keeps deselected specs: %+v", tr.Specs)
	}

	rep, _, ran = run(t, runner.Options{Targets: targets("good"), Focus: []string{"round-trips"}})
	if !slices.Equal(ran, []string{"round-trips_values"}) || len(target(t, rep, "good").Specs) != 1 {
		t.Errorf("focus ran %v", ran)
	}
}

func TestRerunFailedRunsOnlyFailures(t *testing.T) {
	dir := t.TempDir()
	first, _, _ := run(t, runner.Options{Targets: targets("good", "bad"), ReportDir: dir})
	if len(first.Failures()) != 2 {
		t.Fatalf("first run: %d failures, want 2", len(first.Failures()))
	}
	rep, _, ran := run(t, runner.Options{RerunFailed: filepath.Join(dir, "report.json")})
	slices.Sort(ran)
	if !slices.Equal(ran, []string{"escapes", "round-trips_values"}) {
		t.Errorf("rerun ran %v, want only the 2 failed specs", ran)
	}
	if len(rep.Suites) != 1 || len(rep.Suites[0].Targets) != 1 || rep.Suites[0].Targets[0].Target.Name != "bad" {
		t.Fatalf("rerun ran targets %+v, want only bad", rep.Suites)
	}
	if n := len(rep.Suites[0].Targets[0].Specs); n != 2 {
		t.Errorf("rerun reports %d specs, want 2", n)
	}
	if !rep.Failed() || rep.RerunOf == "" {
		t.Errorf("rerun of still-failing specs: failed=%v rerunOf=%q", rep.Failed(), rep.RerunOf)
	}

	// A report without failures reruns nothing.
	clean := t.TempDir()
	run(t, runner.Options{Targets: targets("good"), ReportDir: clean})
	rep, _, ran = run(t, runner.Options{RerunFailed: clean})
	if len(ran) != 0 || len(rep.Suites) != 0 || rep.Failed() {
		t.Errorf("rerun of a clean report ran %v: %+v", ran, rep.Suites)
	}
}

func TestCrashedChildFails(t *testing.T) {
	dir := t.TempDir()
	rep, _, ran := run(t, runner.Options{Targets: targets("crash"), ReportDir: dir, JUnit: filepath.Join(dir, "junit.xml")})
	tr := target(t, rep, "crash")
	if !rep.Failed() || !tr.Crashed || tr.ExitCode == 0 {
		t.Fatalf("a crashed child did not fail: %+v", tr)
	}
	if !strings.Contains(tr.Error, "boom: the fake store crashed") {
		t.Errorf("target error lacks the stderr tail: %q", tr.Error)
	}
	if s := specNamed(t, tr, "fake a first spec"); s.State != runner.StatePassed {
		t.Errorf("the spec finished before the crash: %+v", s)
	}
	s := specNamed(t, tr, "fake round-trips values")
	if !s.Failed() || !strings.Contains(s.Message, "crashed") || !strings.Contains(s.Message, "boom") {
		t.Errorf("the spec running at the crash: %+v", s)
	}
	if !slices.Contains(ran, "round-trips_values") {
		t.Errorf("ran %v", ran)
	}
	junit, err := os.ReadFile(filepath.Join(dir, "junit.xml"))
	if err != nil || !strings.Contains(string(junit), "boom") {
		t.Errorf("junit.xml lacks the crash (%v)", err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if !strings.Contains(string(md), "boom") {
		t.Errorf("report.md lacks the crash:\n%s", md)
	}

	// Rerunning a crashed target reruns it whole.
	_, _, ran = run(t, runner.Options{RerunFailed: dir})
	if !slices.Contains(ran, "a_first_spec") {
		t.Errorf("rerun of a crashed target ran %v, want all of it", ran)
	}
}

func TestHungChildIsKilled(t *testing.T) {
	defer runner.SetKillGrace(500 * time.Millisecond)()
	rep, _, _ := run(t, runner.Options{Targets: targets("hang", "good"), Timeout: time.Second})
	tr := target(t, rep, "hang")
	if !rep.Failed() || !tr.Crashed {
		t.Fatalf("a hung child did not fail: %+v", tr)
	}
	if !strings.Contains(tr.Error, "timed out") {
		t.Errorf("error = %q, want a timeout", tr.Error)
	}
	if c := cell(t, rep, runner.SuiteRow, "hang"); c.Status != runner.CellFailed {
		t.Errorf("suite row of the hung target = %+v", c)
	}
	if target(t, rep, "good").Failed() {
		t.Errorf("the next target was affected by the hung one")
	}
}

func TestCleanupFailureFailsTarget(t *testing.T) {
	rep, _, _ := run(t, runner.Options{Targets: targets("badcleanup")})
	tr := target(t, rep, "badcleanup")
	if !tr.Failed() || !strings.Contains(tr.Error, "cleanup of the fake server failed") {
		t.Errorf("target with a failing cleanup: %+v", tr)
	}
}

func TestCancelledRunInterrupts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := testRunner().Run(ctx, runner.Options{Suites: []string{runnertest.SuiteName}, Targets: targets("good")})
	if !errors.Is(err, context.Canceled) || rep == nil || !rep.Interrupted || !rep.Failed() {
		t.Errorf("cancelled run: err=%v report=%+v", err, rep)
	}
}

func TestBadOptions(t *testing.T) {
	for name, opts := range map[string]runner.Options{
		"unknown suite":        {Suites: []string{"nope"}},
		"unknown target":       {Targets: targets("nope")},
		"targets of no suite":  {Targets: map[string][]string{"nope": {"x"}}},
		"bad label filter":     {LabelFilter: "(("},
		"bad focus":            {Focus: []string{"("}},
		"rerun with focus":     {RerunFailed: "x.json", Focus: []string{"a"}},
		"rerun missing report": {RerunFailed: filepath.Join(t.TempDir(), "none.json")},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := testRunner().Run(context.Background(), opts); err == nil {
				t.Errorf("Run(%+v) succeeded", opts)
			}
		})
	}
}

func TestCancelWhileChildRuns(t *testing.T) {
	t.Setenv(runnertest.MarkerEnv, filepath.Join(t.TempDir(), "marker"))
	ctx, cancel := context.WithCancel(context.Background())
	// The hang target blocks until interrupted; cancel once its child has
	// started (its header is printed just before).
	out := &notifyWriter{match: "target hang", ch: make(chan struct{})}
	go func() {
		<-out.ch
		time.Sleep(200 * time.Millisecond)
		cancel()
	}()
	rep, err := testRunner().Run(ctx, runner.Options{Suites: []string{runnertest.SuiteName}, Targets: targets("hang", "good"), Out: out})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !rep.Interrupted || !rep.Failed() {
		t.Errorf("report not interrupted/failed: %+v", rep)
	}
	tr := target(t, rep, "hang")
	if !tr.Crashed || !strings.Contains(tr.Error, "interrupted") {
		t.Errorf("hang target = %+v, want crashed and interrupted", tr)
	}
	for _, s := range rep.Suites {
		for _, tr := range s.Targets {
			if tr.Target.Name == "good" {
				t.Errorf("the target after the cancellation ran")
			}
		}
	}
}

// notifyWriter closes ch the first time what is written contains match.
type notifyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	match string
	ch    chan struct{}
	done  bool
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.done && strings.Contains(w.buf.String(), w.match) {
		w.done = true
		close(w.ch)
	}
	return len(p), nil
}

func TestTimedOutSpecSaysWhereItWasStuck(t *testing.T) {
	rep, _, _ := run(t, runner.Options{Targets: targets("slow")})
	s := specNamed(t, target(t, rep, "slow"), "fake waits for an event")
	if s.State != runner.StateTimedout {
		t.Fatalf("state = %s, want timedout", s.State)
	}
	for _, want := range []string{"timeout", "Stuck in [It] waits for an event", `step "waiting for the fake watch"`, "runnertest/fake.go:"} {
		if !strings.Contains(s.Message, want) {
			t.Errorf("message lacks %q:\n%s", want, s.Message)
		}
	}
}

func TestChildWithoutReportFails(t *testing.T) {
	r := testRunner()
	r.Executable = "/bin/true"
	rep, err := r.Run(context.Background(), runner.Options{Suites: []string{runnertest.SuiteName}, Targets: targets("good")})
	if err != nil {
		t.Fatal(err)
	}
	tr := target(t, rep, "good")
	if !rep.Failed() || !tr.Crashed || !strings.Contains(tr.Error, "RunChildIfRequested") {
		t.Errorf("a child that left no report: %+v", tr)
	}
}

func TestRunRefusesToRunInAChild(t *testing.T) {
	t.Setenv(runner.ChildEnv, "{}")
	if _, err := testRunner().Run(context.Background(), runner.Options{}); err == nil {
		t.Errorf("Run in a child did not fail")
	}
}
