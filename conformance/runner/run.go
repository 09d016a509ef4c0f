package runner

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
)

// Defaults of Options.
const (
	// DefaultTimeout bounds one child (one suite against one target).
	DefaultTimeout = time.Hour
	// DefaultSeed orders Ginkgo's top-level containers when Options.Seed is 0,
	// so that two runs run specs in the same order.
	DefaultSeed = 1
)

// killGrace is how long a child has, after the parent interrupts it (at its
// timeout or when the run is cancelled), to report and clean up before it is
// killed. Ginkgo's own grace period for a spec is 30s.
var killGrace = 45 * time.Second

// stderrTailLines is how many lines of a crashed child's stderr its failure
// message keeps.
const stderrTailLines = 40

// Options configure a Run. The zero value runs every suite against its
// default targets.
type Options struct {
	// Suites names the suites to run; empty (or "all") means all of them.
	Suites []string
	// Targets names, per suite, the targets to run it against (for the store
	// suite: registered plugin names, "etcd-server", "PLUGIN@endpoints").
	// A suite absent from the map runs against its default targets.
	Targets map[string][]string
	// Endpoints gives, per suite, the URLs of a server of the user's to test
	// (for the store suite: etcd client URLs, tested as "etcd@endpoints").
	Endpoints map[string][]string
	// LabelFilter is a Ginkgo label filter ("store:watch && !Slow").
	LabelFilter string
	// Focus and Skip are regular expressions matched against
	// "SUITE SPEC-FULL-TEXT"; a spec runs if it matches any Focus (or Focus
	// is empty) and no Skip.
	Focus, Skip []string
	// List makes a dry run: nothing runs, and the report lists the specs that
	// would run, in StateListed.
	List bool
	// RerunFailed is the path of an earlier JSON report (or of the ReportDir
	// holding it): only its failed specs run again, each against the target
	// it failed on; a target that crashed runs again whole. Suites, Targets,
	// Endpoints and Focus must then be empty; LabelFilter and Skip still
	// apply.
	RerunFailed string
	// Seed orders Ginkgo's top-level containers; 0 means DefaultSeed.
	Seed int64
	// Timeout bounds each child (one suite against one target); 0 means
	// DefaultTimeout. At the timeout Ginkgo interrupts the running spec and
	// reports; a child still running killGrace later is killed.
	Timeout time.Duration
	// Verbose makes Ginkgo's progress verbose (-v).
	Verbose bool
	// Out receives the children's Ginkgo progress, each child headed by a
	// line naming its suite and target; nil discards it.
	Out io.Writer
	// JUnit, when set, is the path Run writes the JUnit XML report to.
	JUnit string
	// ReportDir, when set, is a directory Run writes report.json,
	// report.md and report.html to (and each child's Ginkgo JSON under
	// ginkgo/).
	ReportDir string
}

// Runner runs conformance suites in child processes. The zero value is
// usable only with a Registry; Run and RunChildIfRequested use a Runner with
// the built-in Suites.
//
// The parent's and the children's Runners must have the same Registry and
// Suites: a child resolves its target and suite by name.
type Runner struct {
	// Registry holds the plugins that targets name.
	Registry *spec.Registry
	// Suites are the suites the runner knows; nil means Suites().
	Suites []Suite
	// Executable is the binary re-executed for each child; empty means the
	// running binary (os.Executable). It must call RunChildIfRequested
	// with the same Registry and Suites.
	Executable string
	// Args are the arguments given to the child binary (after its name).
	Args []string
}

func (r *Runner) suites() []Suite {
	if r.Suites != nil {
		return r.Suites
	}
	return Suites()
}

// Run runs the suites of opts with the built-in Suites, one child process
// per suite and target, sequentially. See Runner.Run.
func Run(ctx context.Context, reg *spec.Registry, opts Options) (*Report, error) {
	return (&Runner{Registry: reg}).Run(ctx, opts)
}

// job is one child to run.
type job struct {
	suite  string
	target Target
	focus  []string
}

// Run runs one child process per (suite, target) in turn, streaming their
// progress to opts.Out, and returns the aggregated Report. It writes
// opts.JUnit and the files of opts.ReportDir, if set, before returning.
//
// The error is for a run that could not be set up (an unknown suite or
// target, an unreadable RerunFailed report, a report that could not be
// written) or that was cancelled through ctx; failing specs and crashed
// children are not errors but show in the Report (Report.Failed). When ctx
// is cancelled, Run interrupts the running child, returns the partial
// report (Interrupted) and ctx.Err().
func (r *Runner) Run(ctx context.Context, opts Options) (*Report, error) {
	if r.Registry == nil {
		return nil, fmt.Errorf("runner without a registry: %w", spec.ErrInvalid)
	}
	if _, ok := os.LookupEnv(ChildEnv); ok {
		// A binary that re-executes itself without calling
		// RunChildIfRequested first would otherwise recurse.
		return nil, fmt.Errorf("runner.Run called in a conformance child (%s is set): the program must call RunChildIfRequested before anything else: %w", ChildEnv, spec.ErrInvalid)
	}
	exe := r.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("finding the executable to re-run: %w", err)
		}
	}
	if opts.Seed == 0 {
		opts.Seed = DefaultSeed
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	out = &lockedWriter{w: out}
	if opts.LabelFilter != "" {
		if _, err := types.ParseLabelFilter(opts.LabelFilter); err != nil {
			return nil, fmt.Errorf("label filter %q: %v: %w", opts.LabelFilter, err, spec.ErrInvalid)
		}
	}
	for _, re := range append(slices.Clone(opts.Focus), opts.Skip...) {
		if _, err := regexp.Compile(re); err != nil {
			return nil, fmt.Errorf("focus/skip %q: %v: %w", re, err, spec.ErrInvalid)
		}
	}

	jobs, err := r.plan(opts)
	if err != nil {
		return nil, err
	}

	rep := &Report{
		Kind:        ReportKind,
		Version:     ReportVersion,
		StartTime:   time.Now(),
		DryRun:      opts.List,
		LabelFilter: opts.LabelFilter,
		Focus:       opts.Focus,
		Skip:        opts.Skip,
		RerunOf:     opts.RerunFailed,
		Seed:        opts.Seed,
		Suites:      []SuiteReport{},
		ginkgo:      map[[2]string]types.Report{},
	}
	work, err := os.MkdirTemp("", "kubelab-conform-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	var runErr error
	for i, j := range jobs {
		if err := ctx.Err(); err != nil {
			rep.Interrupted = true
			runErr = err
			break
		}
		dir := filepath.Join(work, fmt.Sprintf("%03d", i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, err
		}
		focus := opts.Focus
		if j.focus != nil {
			focus = j.focus
		}
		cfg := childConfig{
			Suite:       j.suite,
			Target:      j.target,
			LabelFilter: opts.LabelFilter,
			Focus:       focus,
			Skip:        opts.Skip,
			DryRun:      opts.List,
			Seed:        opts.Seed,
			Timeout:     opts.Timeout,
			Verbose:     opts.Verbose,
			NoColor:     !isTerminal(opts.Out),
			JSONReport:  filepath.Join(dir, "ginkgo.json"),
			Progress:    filepath.Join(dir, "progress.jsonl"),
		}
		fmt.Fprintf(out, "\n=== %s suite, target %s ===\n", j.suite, j.target.Name)
		tr, gr := r.runOne(ctx, exe, cfg, out, opts.Timeout)
		if ctx.Err() != nil {
			rep.Interrupted = true
			runErr = ctx.Err()
		}
		r.addTarget(rep, j.suite, tr, gr)
		if opts.ReportDir != "" {
			if err := writeGinkgoJSON(opts.ReportDir, j.suite, j.target.Name, gr); err != nil {
				runErr = errors.Join(runErr, err)
			}
		}
	}
	rep.EndTime = time.Now()

	if opts.ReportDir != "" {
		if err := rep.WriteDir(opts.ReportDir); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	if opts.JUnit != "" {
		if err := rep.WriteJUnit(opts.JUnit); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	return rep, runErr
}

func (r *Runner) addTarget(rep *Report, suite string, tr TargetReport, gr types.Report) {
	rep.ginkgo[[2]string{suite, tr.Target.Name}] = gr
	for i := range rep.Suites {
		if rep.Suites[i].Name == suite {
			rep.Suites[i].Targets = append(rep.Suites[i].Targets, tr)
			return
		}
	}
	sr := SuiteReport{Name: suite, Targets: []TargetReport{tr}}
	if s, ok := findSuite(r.suites(), suite); ok {
		for _, c := range s.Capabilities {
			sr.Capabilities = append(sr.Capabilities, string(c))
		}
	}
	rep.Suites = append(rep.Suites, sr)
}

// plan lists the children to run.
func (r *Runner) plan(opts Options) ([]job, error) {
	all := r.suites()
	if opts.RerunFailed != "" {
		if len(opts.Suites) > 0 || len(opts.Targets) > 0 || len(opts.Endpoints) > 0 || len(opts.Focus) > 0 {
			return nil, fmt.Errorf("rerunning the failures of %q: suites, targets, endpoints and focus come from that report: %w", opts.RerunFailed, spec.ErrInvalid)
		}
		prev, err := ReadReport(opts.RerunFailed)
		if err != nil {
			return nil, err
		}
		return rerunPlan(all, prev)
	}
	suites, err := selectSuites(all, opts.Suites)
	if err != nil {
		return nil, err
	}
	for name := range opts.Targets {
		if _, ok := findSuite(all, name); !ok {
			return nil, fmt.Errorf("targets for suite %q (known: %s): %w", name, strings.Join(suiteNames(all), ", "), spec.ErrNotFound)
		}
	}
	for name := range opts.Endpoints {
		if _, ok := findSuite(all, name); !ok {
			return nil, fmt.Errorf("endpoints for suite %q (known: %s): %w", name, strings.Join(suiteNames(all), ", "), spec.ErrNotFound)
		}
	}
	var jobs []job
	for _, s := range suites {
		targets, err := s.Targets(r.Registry, opts.Targets[s.Name], opts.Endpoints[s.Name])
		if err != nil {
			return nil, fmt.Errorf("suite %q: %w", s.Name, err)
		}
		seen := map[string]bool{}
		for _, t := range targets {
			if seen[t.Name] {
				return nil, fmt.Errorf("suite %q: target %q named twice: %w", s.Name, t.Name, spec.ErrInvalid)
			}
			seen[t.Name] = true
			jobs = append(jobs, job{suite: s.Name, target: t})
		}
	}
	return jobs, nil
}

// rerunPlan lists the children that rerun prev's failures: each target with
// failed specs, focused on exactly those specs; a target that crashed or
// failed as a whole, unfocused.
func rerunPlan(all []Suite, prev *Report) ([]job, error) {
	var jobs []job
	for _, s := range prev.Suites {
		if _, ok := findSuite(all, s.Name); !ok {
			return nil, fmt.Errorf("report names suite %q, which this runner does not know: %w", s.Name, spec.ErrNotFound)
		}
		for _, t := range s.Targets {
			if !t.Failed() {
				continue
			}
			whole := t.Crashed
			var focus []string
			for _, sp := range t.Specs {
				if !sp.Failed() {
					continue
				}
				if sp.Capability == SuiteRow {
					whole = true
					break
				}
				focus = append(focus, FocusExactly(s.Name, sp.Name))
			}
			if whole || len(focus) == 0 {
				focus = nil
			}
			jobs = append(jobs, job{suite: s.Name, target: t.Target, focus: focus})
		}
	}
	return jobs, nil
}

// FocusExactly returns a focus regular expression that selects the spec
// whose full text is name, and no other, in the suite called suite.
func FocusExactly(suite, name string) string {
	return "^" + regexp.QuoteMeta(suite+" "+name) + "$"
}

// runOne runs one child and turns what it left into a TargetReport and a
// Ginkgo report (the child's, or one synthesized for a crash).
func (r *Runner) runOne(ctx context.Context, exe string, cfg childConfig, out io.Writer, timeout time.Duration) (TargetReport, types.Report) {
	tr := TargetReport{Target: cfg.Target, Specs: []SpecResult{}}
	if s, ok := findSuite(r.suites(), cfg.Suite); ok && s.Claims != nil {
		for _, c := range s.Claims(r.Registry, cfg.Target) {
			tr.Capabilities = append(tr.Capabilities, string(c))
		}
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return crashed(cfg, tr, nil, fmt.Sprintf("encoding the child's configuration: %v", err))
	}

	// The child's own deadline is timeout (Ginkgo interrupts itself then);
	// this one, later, is for a child that does not stop.
	hardCtx, cancel := context.WithTimeout(ctx, timeout+killGrace)
	defer cancel()
	cmd := exec.CommandContext(hardCtx, exe, r.Args...)
	cmd.Env = append(withoutEnv(os.Environ(), ChildEnv), ChildEnv+"="+string(raw))
	// Its own process group, so that whatever it starts (etcd) can be killed
	// with it, and a terminal's ^C reaches only the parent, which then
	// interrupts the child itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var interrupted atomic.Bool
	cmd.Cancel = func() error {
		interrupted.Store(true)
		// Ginkgo handles SIGINT: it interrupts the running spec, runs the
		// cleanup nodes and writes its report.
		return cmd.Process.Signal(os.Interrupt)
	}
	cmd.WaitDelay = killGrace
	stderrTail := harness.NewTailBuffer(16 << 10)
	stdoutTail := harness.NewTailBuffer(16 << 10)
	cmd.Stdout = io.MultiWriter(out, stdoutTail)
	cmd.Stderr = io.MultiWriter(out, stderrTail)

	start := time.Now()
	err = cmd.Run()
	tr.DurationSeconds = time.Since(start).Seconds()
	if cmd.Process != nil {
		// Reap whatever the child left behind in its group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	tr.ExitCode = -1
	if cmd.ProcessState != nil {
		tr.ExitCode = cmd.ProcessState.ExitCode()
	}

	tail := stderrTail.LastLines(stderrTailLines)
	if strings.TrimSpace(tail) == "" {
		tail = stdoutTail.LastLines(stderrTailLines)
	}
	gr, rerr := readGinkgoReport(cfg.JSONReport)
	if rerr != nil {
		var why string
		switch {
		case cmd.ProcessState == nil:
			why = fmt.Sprintf("child process did not start: %v", err)
		case hardCtx.Err() != nil && ctx.Err() == nil:
			why = fmt.Sprintf("child process timed out after %s and was killed", timeout+killGrace)
		case interrupted.Load():
			why = "child process was interrupted"
		case tr.ExitCode == 0:
			why = fmt.Sprintf("child process exited without a report: does %s call runner.RunChildIfRequested first?", exe)
		default:
			why = fmt.Sprintf("child process crashed (%s)", cmd.ProcessState)
		}
		if tail != "" {
			why += ":\n" + tail
		}
		return crashed(cfg, tr, readProgress(cfg.Progress), why)
	}
	gr.SuiteDescription = fmt.Sprintf("%s [%s]", cfg.Suite, cfg.Target.Name)
	tr.Specs = append(tr.Specs, specResultsFromGinkgo(gr, cfg.DryRun)...)
	switch {
	case tr.ExitCode != 0 && gr.SuiteSucceeded:
		tr.Error = fmt.Sprintf("child process exited with code %d after its specs passed", tr.ExitCode)
	case !gr.SuiteSucceeded && len(gr.SpecialSuiteFailureReasons) > 0:
		tr.Error = strings.Join(gr.SpecialSuiteFailureReasons, "; ")
	case !gr.SuiteSucceeded && !slices.ContainsFunc(tr.Specs, SpecResult.Failed):
		tr.Error = "the suite failed without a failed spec"
	}
	if tr.Error != "" {
		if tail != "" && tr.ExitCode != 0 && tr.ExitCode != 1 {
			tr.Error += ":\n" + tail
		}
		if !slices.ContainsFunc(tr.Specs, func(s SpecResult) bool { return s.Capability == SuiteRow && s.Failed() }) {
			failure := SpecResult{Name: "[suite]", Capability: SuiteRow, State: StateFailed, Message: tr.Error}
			tr.Specs = append(tr.Specs, failure)
			gr.SpecReports = append(gr.SpecReports, synthesizeSpec(failure))
			gr.SuiteSucceeded = false
		}
	}
	return tr, gr
}

// crashed builds the results of a child that left no Ginkgo report: the
// specs it finished (from its progress file), and a failure for the spec it
// was running or, if none, for the target as a whole.
func crashed(cfg childConfig, tr TargetReport, events []progressEvent, why string) (TargetReport, types.Report) {
	tr.Crashed = true
	tr.Error = why
	gr := types.Report{
		SuiteDescription: fmt.Sprintf("%s [%s]", cfg.Suite, cfg.Target.Name),
		SuitePath:        "",
		SuiteSucceeded:   false,
		SpecialSuiteFailureReasons: []string{
			firstLine(why),
		},
		RunTime: time.Duration(tr.DurationSeconds * float64(time.Second)),
	}
	var running *types.SpecReport
	for _, ev := range events {
		switch ev.Event {
		case "start":
			sr := ev.Spec
			running = &sr
		case "done":
			gr.SpecReports = append(gr.SpecReports, ev.Spec)
			running = nil
		}
	}
	tr.Specs = append(tr.Specs, specResultsFromGinkgo(types.Report{SpecReports: gr.SpecReports, SuiteSucceeded: true}, cfg.DryRun)...)
	if running != nil {
		sr := *running
		sr.State = types.SpecStateFailed
		sr.NumAttempts = max(sr.NumAttempts, 1)
		sr.Failure = types.Failure{Message: "the spec was running when its " + why, Location: sr.LeafNodeLocation}
		gr.SpecReports = append(gr.SpecReports, sr)
		tr.Specs = append(tr.Specs, specResult(sr, cfg.DryRun))
	} else {
		failure := SpecResult{Name: "[suite]", Capability: SuiteRow, State: StateFailed, Message: why}
		gr.SpecReports = append(gr.SpecReports, synthesizeSpec(failure))
		tr.Specs = append(tr.Specs, failure)
	}
	return tr, gr
}

func readGinkgoReport(path string) (types.Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return types.Report{}, fmt.Errorf("%w: %v", errNoReport, err)
	}
	var reports []types.Report
	if err := json.Unmarshal(data, &reports); err != nil {
		return types.Report{}, fmt.Errorf("%w: %v", errNoReport, err)
	}
	if len(reports) != 1 {
		return types.Report{}, fmt.Errorf("%w: %d reports in %s", errNoReport, len(reports), path)
	}
	return reports[0], nil
}

// readProgress reads a child's progress file, ignoring a torn last line.
func readProgress(path string) []progressEvent {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []progressEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		var ev progressEvent
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			out = append(out, ev)
		}
	}
	return out
}

func writeGinkgoJSON(dir, suite, target string, gr types.Report) error {
	path := filepath.Join(dir, "ginkgo", fileSafe(suite+"_"+target)+".json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent([]types.Report{gr}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func fileSafe(s string) string { return unsafeFileChars.ReplaceAllString(s, "_") }

func withoutEnv(env []string, name string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		return strings.HasPrefix(kv, name+"=")
	})
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSuffix(line, ":")
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// lockedWriter serializes writes from a child's stdout and stderr copiers.
type lockedWriter struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

// Write writes p to the underlying writer under the lock.
func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
