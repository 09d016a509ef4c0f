package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"

	"github.com/kubelab/kubelab/spec"
)

// ChildEnv is the environment variable that makes a process a conformance
// child: it holds the child's configuration as JSON. RunChildIfRequested
// looks for it; nothing else should set it.
const ChildEnv = "KUBELAB_CONFORM_CHILD"

// Exit codes of a child process besides Ginkgo's own (0 passed, 1 failed).
const (
	// childExitSetup: the child could not be configured or could not build
	// its target; its stderr says why.
	childExitSetup = 3
)

// childConfig is what the parent tells one child, through ChildEnv.
type childConfig struct {
	// Suite and Target say what to run.
	Suite  string `json:"suite"`
	Target Target `json:"target"`
	// LabelFilter, Focus, Skip and DryRun select specs (see Options).
	LabelFilter string   `json:"labelFilter,omitempty"`
	Focus       []string `json:"focus,omitempty"`
	Skip        []string `json:"skip,omitempty"`
	DryRun      bool     `json:"dryRun,omitempty"`
	// Seed orders the top-level containers; Timeout bounds the suite.
	Seed    int64         `json:"seed"`
	Timeout time.Duration `json:"timeout,omitempty"`
	// Verbose and NoColor configure Ginkgo's progress output.
	Verbose bool `json:"verbose,omitempty"`
	NoColor bool `json:"noColor,omitempty"`
	// JSONReport is where Ginkgo writes its JSON report (absolute).
	JSONReport string `json:"jsonReport"`
	// Progress is where the child appends one JSON line per spec event
	// (absolute), so a crash leaves a record.
	Progress string `json:"progress"`
}

// progressEvent is one line of a child's progress file.
type progressEvent struct {
	// Event is "start" (the spec is about to run) or "done".
	Event string `json:"event"`
	// Spec is Ginkgo's report of the spec at that point.
	Spec types.SpecReport `json:"spec"`
}

// RunChildIfRequested makes this process a conformance child when the
// parent asked for one (ChildEnv is set): it runs one suite against one
// target from reg with the built-in Suites and exits the process; it never
// returns then. Otherwise it returns at once. Call it first thing in main,
// or in TestMain for a test binary that calls Run, with the Registry the
// parent resolves targets from.
func RunChildIfRequested(reg *spec.Registry) {
	(&Runner{Registry: reg}).RunChildIfRequested()
}

// RunChildIfRequested is the package-level RunChildIfRequested for this
// Runner's registry and suites.
func (r *Runner) RunChildIfRequested() {
	raw, ok := os.LookupEnv(ChildEnv)
	if !ok {
		return
	}
	// Processes the child starts (etcd, and anything a suite runs) must not
	// take themselves for children.
	os.Unsetenv(ChildEnv)
	os.Exit(r.runChild(raw, os.Stderr))
}

// childT is the GinkgoTestingT of a child: it only records failure.
type childT struct{ failed bool }

// Fail records that the suite failed.
func (t *childT) Fail() { t.failed = true }

func (r *Runner) runChild(raw string, stderr io.Writer) int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintf(stderr, "kubelab conformance child: bad %s: %v\n", ChildEnv, err)
		return childExitSetup
	}
	suite, ok := findSuite(r.suites(), cfg.Suite)
	if !ok {
		fmt.Fprintf(stderr, "kubelab conformance child: unknown suite %q\n", cfg.Suite)
		return childExitSetup
	}
	reg := r.Registry
	if reg == nil {
		reg = spec.NewRegistry()
	}

	progress, err := os.OpenFile(cfg.Progress, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintf(stderr, "kubelab conformance child: %v\n", err)
		return childExitSetup
	}
	defer progress.Close()
	var mu sync.Mutex // serializes writes to progress
	record := func(event string, sr types.SpecReport) {
		line, err := json.Marshal(progressEvent{Event: event, Spec: sr})
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		// One unbuffered write per line: what was written survives a crash.
		_, _ = progress.Write(append(line, '\n'))
	}
	ginkgo.ReportBeforeEach(func(sr types.SpecReport) {
		if !cfg.DryRun && !sr.State.Is(types.SpecStateSkipped|types.SpecStatePending) {
			record("start", sr)
		}
	})
	ginkgo.ReportAfterEach(func(sr types.SpecReport) {
		if !deselected(sr) {
			record("done", sr)
		}
	})

	gomega.RegisterFailHandler(ginkgo.Fail)
	cleanup, err := suite.Declare(context.Background(), reg, cfg.Target, cfg.DryRun)
	if err != nil {
		fmt.Fprintf(stderr, "kubelab conformance child: suite %q, target %q: %v\n", cfg.Suite, cfg.Target.Name, err)
		return childExitSetup
	}

	sc := types.NewDefaultSuiteConfig()
	sc.RandomSeed = cfg.Seed
	sc.RandomizeAllSpecs = false
	sc.LabelFilter = cfg.LabelFilter
	sc.FocusStrings = cfg.Focus
	sc.SkipStrings = cfg.Skip
	sc.DryRun = cfg.DryRun
	if cfg.Timeout > 0 {
		sc.Timeout = cfg.Timeout
	}
	rc := types.NewDefaultReporterConfig()
	rc.JSONReport = cfg.JSONReport
	rc.NoColor = cfg.NoColor
	rc.Verbose = cfg.Verbose
	rc.SilenceSkips = !cfg.Verbose

	t := &childT{}
	passed := ginkgo.RunSpecs(t, cfg.Suite, sc, rc)
	code := 0
	if !passed || t.failed {
		code = 1
	}
	if cleanup != nil {
		if err := cleanup(); err != nil {
			fmt.Fprintf(stderr, "kubelab conformance child: suite %q, target %q: cleanup: %v\n", cfg.Suite, cfg.Target.Name, err)
			code = childExitSetup
		}
	}
	return code
}
