package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/kubelab/kubelab/conformance/harness"
)

// The JSON form of a Report is identified by these two values.
const (
	// ReportKind is the "kind" of every report.
	ReportKind = "kubelab-conformance-report"
	// ReportVersion is the "version" of the report format this package
	// writes and reads.
	ReportVersion = 1
)

// SuiteRow is the matrix row, and the capability of the synthetic spec
// results, that hold failures of a whole target rather than of one spec: a
// child that crashed, timed out or could not start, or a failed
// BeforeSuite/AfterSuite.
const SuiteRow = "(suite)"

// Spec states, as Ginkgo's types.SpecState names them, plus StateListed.
const (
	// StatePassed: the spec ran and passed.
	StatePassed = "passed"
	// StateFailed: an assertion failed (or the child crashed while the spec
	// was running).
	StateFailed = "failed"
	// StateSkipped: the spec skipped itself, e.g. because the target does
	// not claim its capability (SpecResult.Unclaimed).
	StateSkipped = "skipped"
	// StatePending: the spec is marked pending in the suite.
	StatePending = "pending"
	// StatePanicked: the spec panicked.
	StatePanicked = "panicked"
	// StateTimedout: the spec exceeded its own timeout.
	StateTimedout = "timedout"
	// StateInterrupted: the spec was interrupted (suite timeout, signal).
	StateInterrupted = "interrupted"
	// StateAborted: the spec aborted the suite (Gomega's StopTrying, ...).
	StateAborted = "aborted"
	// StateListed is the state of a spec that a dry run (Options.List)
	// found selected: it would run.
	StateListed = "listed"
)

// IsFailureState reports whether a spec in state s counts as failed.
func IsFailureState(s string) bool {
	switch s {
	case StateFailed, StatePanicked, StateTimedout, StateInterrupted, StateAborted:
		return true
	}
	return false
}

// Report is the outcome of one Run: for each suite, each target and each
// selected spec, what happened. Specs that the filters (labels, focus, skip)
// deselected are not in it. Its JSON form is what WriteJSON writes and
// ReadReport reads.
type Report struct {
	// Kind is ReportKind.
	Kind string `json:"kind"`
	// Version is ReportVersion.
	Version int `json:"version"`
	// StartTime is when the run started.
	StartTime time.Time `json:"startTime"`
	// EndTime is when the last child ended.
	EndTime time.Time `json:"endTime"`
	// DryRun is true for a listing (Options.List): nothing ran and selected
	// specs are in StateListed.
	DryRun bool `json:"dryRun,omitempty"`
	// LabelFilter is the run's Ginkgo label filter (Options.LabelFilter).
	LabelFilter string `json:"labelFilter,omitempty"`
	// Focus are the run's focus expressions (Options.Focus).
	Focus []string `json:"focus,omitempty"`
	// Skip are the run's skip expressions (Options.Skip).
	Skip []string `json:"skip,omitempty"`
	// RerunOf is the report whose failures this run reran, if any.
	RerunOf string `json:"rerunOf,omitempty"`
	// Seed is Ginkgo's random seed, which orders top-level containers.
	Seed int64 `json:"seed"`
	// Interrupted is set when the run was cancelled before every target ran.
	Interrupted bool `json:"interrupted,omitempty"`
	// Suites are the suites that ran, in order.
	Suites []SuiteReport `json:"suites"`

	// ginkgo holds each child's Ginkgo report (or one synthesized for a
	// crashed child), by suite and target name, for WriteJUnit. It is not
	// serialized; a report read back from JSON synthesizes them.
	ginkgo map[[2]string]types.Report
}

// SuiteReport is one suite's results.
type SuiteReport struct {
	// Name is the suite's name.
	Name string `json:"name"`
	// Capabilities is the order of the suite's matrix rows (see
	// Suite.Capabilities); capabilities not in it follow, sorted.
	Capabilities []string `json:"capabilities,omitempty"`
	// Targets are the targets it ran against, in order.
	Targets []TargetReport `json:"targets"`
}

// TargetReport is one run of one suite against one target: one child process.
type TargetReport struct {
	// Target is the target as the child received it.
	Target Target `json:"target"`
	// Capabilities are the optional capabilities the target claims, where
	// the suite knows them (informational).
	Capabilities []string `json:"capabilities,omitempty"`
	// ExitCode is the child's exit code (-1 when it was killed by a signal).
	ExitCode int `json:"exitCode"`
	// Crashed is true when the child left no Ginkgo report: it crashed, was
	// killed at the timeout, or could not start. Its specs are those it
	// finished before, plus a failed one for what was running.
	Crashed bool `json:"crashed,omitempty"`
	// Error describes a failure of the target as a whole (crash, timeout,
	// suite-level failure); empty otherwise.
	Error string `json:"error,omitempty"`
	// DurationSeconds is the child's wall time.
	DurationSeconds float64 `json:"durationSeconds"`
	// Specs are the selected specs, in the order they ran.
	Specs []SpecResult `json:"specs"`
}

// SpecResult is one spec's outcome on one target.
type SpecResult struct {
	// Name is the spec's full text (containers and leaf, space-separated),
	// as Ginkgo's focus matches it and as the golden list names it.
	Name string `json:"name"`
	// Capability is the spec's capability label (harness.CapabilityOf), or
	// SuiteRow for target-level failures.
	Capability string `json:"capability"`
	// Labels are all of the spec's labels.
	Labels []string `json:"labels,omitempty"`
	// State is one of the State* constants.
	State string `json:"state"`
	// Unclaimed is true for a spec skipped because the target does not
	// claim its capability (harness.SkipReasonUnclaimed).
	Unclaimed bool `json:"unclaimed,omitempty"`
	// Message is the failure or skip message.
	Message string `json:"message,omitempty"`
	// Location is where the failure happened ("file:line"), or the spec's
	// own location.
	Location string `json:"location,omitempty"`
	// DurationSeconds is the spec's run time.
	DurationSeconds float64 `json:"durationSeconds"`
}

// Failed reports whether the spec failed.
func (s SpecResult) Failed() bool { return IsFailureState(s.State) }

// Failed reports whether the target failed: a spec failed, or the child
// crashed or failed as a whole.
func (t TargetReport) Failed() bool {
	if t.Crashed || t.Error != "" {
		return true
	}
	return slices.ContainsFunc(t.Specs, SpecResult.Failed)
}

// Failed reports whether anything failed: a spec, a child, or a whole
// target. An interrupted run counts as failed too.
func (r *Report) Failed() bool {
	if r.Interrupted {
		return true
	}
	for _, s := range r.Suites {
		for _, t := range s.Targets {
			if t.Failed() {
				return true
			}
		}
	}
	return false
}

// ExitCode is the exit code a command should end with: 0 when nothing
// failed, 1 otherwise.
func (r *Report) ExitCode() int {
	if r.Failed() {
		return 1
	}
	return 0
}

// Counts tallies spec results over the whole report.
type Counts struct {
	// Passed counts passed specs.
	Passed int
	// Failed counts specs in a failure state (see IsFailureState).
	Failed int
	// Skipped counts skipped specs.
	Skipped int
	// Pending counts pending specs.
	Pending int
	// Listed counts specs a dry run listed.
	Listed int
}

// Total is the number of specs counted.
func (c Counts) Total() int { return c.Passed + c.Failed + c.Skipped + c.Pending + c.Listed }

// Counts tallies every spec result of the report.
func (r *Report) Counts() Counts {
	var c Counts
	for _, s := range r.Suites {
		for _, t := range s.Targets {
			for _, sp := range t.Specs {
				c.add(sp)
			}
		}
	}
	return c
}

func (c *Counts) add(sp SpecResult) {
	switch {
	case sp.Failed():
		c.Failed++
	case sp.State == StatePassed:
		c.Passed++
	case sp.State == StateSkipped:
		c.Skipped++
	case sp.State == StatePending:
		c.Pending++
	case sp.State == StateListed:
		c.Listed++
	}
}

// Failure is one failed spec, for the failures sections of the summaries.
type Failure struct {
	// Suite is the suite's name.
	Suite string
	// Target is the target's name.
	Target string
	// Spec is the failed spec.
	Spec SpecResult
}

// Failures lists every failed spec of the report, suite by suite, target by
// target.
func (r *Report) Failures() []Failure {
	var out []Failure
	for _, s := range r.Suites {
		for _, t := range s.Targets {
			for _, sp := range t.Specs {
				if sp.Failed() {
					out = append(out, Failure{Suite: s.Name, Target: t.Target.Name, Spec: sp})
				}
			}
		}
	}
	return out
}

// CellStatus is the verdict of one matrix cell.
type CellStatus string

// Matrix cell verdicts.
const (
	// CellNone: the target has no spec of this capability.
	CellNone CellStatus = ""
	// CellPassed: at least one spec passed and none failed.
	CellPassed CellStatus = "passed"
	// CellFailed: at least one spec failed.
	CellFailed CellStatus = "failed"
	// CellSkipped: every spec was skipped (or pending).
	CellSkipped CellStatus = "skipped"
	// CellListed: a dry run; the specs would run.
	CellListed CellStatus = "listed"
)

// Cell is one capability × target cell of a Matrix.
type Cell struct {
	// Status is the verdict.
	Status CellStatus
	// Passed, Failed, Skipped and Listed count the specs; Unclaimed counts
	// the skipped ones that were skipped because the target does not claim
	// the capability. Pending specs count as skipped.
	Passed, Failed, Skipped, Unclaimed, Listed int
}

// AllUnclaimed reports whether the cell is skipped entirely because the
// capability is not claimed.
func (c Cell) AllUnclaimed() bool {
	return c.Status == CellSkipped && c.Unclaimed == c.Skipped && c.Skipped > 0
}

// Matrix is one suite's capability × target table.
type Matrix struct {
	// Suite is the suite's name.
	Suite string
	// Capabilities are the rows, in the suite's order (then sorted), with
	// SuiteRow last when present.
	Capabilities []string
	// Targets are the columns, in run order.
	Targets []string
	// Cells[i][j] is capability i on target j.
	Cells [][]Cell
}

// Matrices returns one Matrix per suite, in order.
func (r *Report) Matrices() []Matrix {
	out := make([]Matrix, 0, len(r.Suites))
	for _, s := range r.Suites {
		out = append(out, s.Matrix())
	}
	return out
}

// Matrix builds the suite's capability × target table: a cell is failed if
// any spec failed, passed if at least one passed and none failed, skipped
// if all were skipped.
func (s SuiteReport) Matrix() Matrix {
	m := Matrix{Suite: s.Name}
	seen := map[string]bool{}
	suiteRow := false
	for _, t := range s.Targets {
		m.Targets = append(m.Targets, t.Target.Name)
		for _, sp := range t.Specs {
			if sp.Capability == SuiteRow {
				suiteRow = true
			} else if !seen[sp.Capability] {
				seen[sp.Capability] = true
				m.Capabilities = append(m.Capabilities, sp.Capability)
			}
		}
	}
	rank := map[string]int{}
	for i, c := range s.Capabilities {
		rank[c] = i + 1
	}
	sort.SliceStable(m.Capabilities, func(i, j int) bool {
		a, b := m.Capabilities[i], m.Capabilities[j]
		ra, rb := rank[a], rank[b]
		switch {
		case ra > 0 && rb > 0:
			return ra < rb
		case ra > 0 || rb > 0:
			return ra > 0
		}
		return a < b
	})
	if suiteRow {
		m.Capabilities = append(m.Capabilities, SuiteRow)
	}
	row := map[string]int{}
	for i, c := range m.Capabilities {
		row[c] = i
	}
	m.Cells = make([][]Cell, len(m.Capabilities))
	for i := range m.Cells {
		m.Cells[i] = make([]Cell, len(m.Targets))
	}
	for j, t := range s.Targets {
		for _, sp := range t.Specs {
			c := &m.Cells[row[sp.Capability]][j]
			switch {
			case sp.Failed():
				c.Failed++
			case sp.State == StatePassed:
				c.Passed++
			case sp.State == StateListed:
				c.Listed++
			default: // skipped, pending
				c.Skipped++
				if sp.Unclaimed {
					c.Unclaimed++
				}
			}
		}
	}
	for i := range m.Cells {
		for j := range m.Cells[i] {
			c := &m.Cells[i][j]
			switch {
			case c.Failed > 0:
				c.Status = CellFailed
			case c.Passed > 0:
				c.Status = CellPassed
			case c.Listed > 0:
				c.Status = CellListed
			case c.Skipped > 0:
				c.Status = CellSkipped
			}
		}
	}
	return m
}

// ReadReport reads a report written by WriteJSON. path may also be a
// directory holding "report.json" (a ReportDir).
func ReadReport(path string) (*Report, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "report.json")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("report %q: %w", path, err)
	}
	if r.Kind != ReportKind {
		return nil, fmt.Errorf("report %q: kind %q, want %q", path, r.Kind, ReportKind)
	}
	if r.Version != ReportVersion {
		return nil, fmt.Errorf("report %q: version %d, want %d", path, r.Version, ReportVersion)
	}
	return &r, nil
}

// targetFromGinkgo turns one child's Ginkgo report into a TargetReport's
// spec results: deselected specs are dropped, suite-level failures become
// SuiteRow results.
func specResultsFromGinkgo(gr types.Report, dryRun bool) []SpecResult {
	var out []SpecResult
	for _, sr := range gr.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt {
			// BeforeSuite, AfterSuite, ReportAfterSuite, cleanup: only
			// their failures matter.
			if sr.State.Is(types.SpecStateFailureStates) {
				res := specResult(sr, dryRun)
				res.Name = fmt.Sprintf("[%s]", sr.LeafNodeType)
				res.Capability = SuiteRow
				out = append(out, res)
			}
			continue
		}
		if deselected(sr) {
			continue
		}
		out = append(out, specResult(sr, dryRun))
	}
	if !gr.SuiteSucceeded && len(gr.SpecialSuiteFailureReasons) > 0 && !slices.ContainsFunc(out, SpecResult.Failed) {
		out = append(out, SpecResult{
			Name:       "[suite]",
			Capability: SuiteRow,
			State:      StateFailed,
			Message:    strings.Join(gr.SpecialSuiteFailureReasons, "; "),
		})
	}
	return out
}

// deselected reports whether Ginkgo skipped the spec without running it
// because of the filters (or because the suite was interrupted or out of
// time, which the suite-level result reports).
func deselected(sr types.SpecReport) bool {
	return sr.State == types.SpecStateSkipped && sr.NumAttempts == 0 && sr.Failure.Message == ""
}

func specResult(sr types.SpecReport, dryRun bool) SpecResult {
	res := SpecResult{
		Name:            sr.FullText(),
		Labels:          sr.Labels(),
		Capability:      harness.CapabilityOf(sr.Labels()),
		State:           sr.State.String(),
		DurationSeconds: sr.RunTime.Seconds(),
		Location:        sr.LeafNodeLocation.String(),
	}
	if dryRun && sr.State == types.SpecStatePassed {
		res.State = StateListed
	}
	if sr.State.Is(types.SpecStateFailureStates | types.SpecStateSkipped) {
		res.Message = sr.Failure.Message
		if sr.State == types.SpecStatePanicked && sr.Failure.ForwardedPanic != "" {
			res.Message = strings.TrimSpace(res.Message + "\n" + sr.Failure.ForwardedPanic)
		}
		if sr.Failure.Location.FileName != "" {
			res.Location = sr.Failure.Location.String()
		}
		if sr.Failure.AdditionalFailure != nil && sr.Failure.AdditionalFailure.Failure.Message != "" {
			res.Message += "\n" + sr.Failure.AdditionalFailure.Failure.Message
		}
		if pr := sr.Failure.ProgressReport; !pr.IsZero() {
			res.Message += stuckAt(pr)
		}
	}
	if sr.State == types.SpecStateSkipped && strings.Contains(sr.Failure.Message, harness.SkipReasonUnclaimed) {
		res.Unclaimed = true
	}
	return res
}

// stuckAt summarizes where a timed-out or interrupted spec was: its node,
// its step, and the frames of its goroutine in the suite's own code.
func stuckAt(pr types.ProgressReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nStuck in [%s] %s at %s", pr.CurrentNodeType, pr.CurrentNodeText, pr.CurrentNodeLocation)
	if pr.CurrentStepText != "" {
		fmt.Fprintf(&b, ", step %q at %s", pr.CurrentStepText, pr.CurrentStepLocation)
	}
	for _, g := range pr.Goroutines {
		if !g.IsSpecGoroutine {
			continue
		}
		for _, fc := range g.Stack {
			if fc.Highlight {
				fmt.Fprintf(&b, "\n  %s\n    %s:%d", fc.Function, fc.Filename, fc.Line)
			}
		}
	}
	return b.String()
}

// ginkgoReports returns the Ginkgo report of every child, synthesizing one
// from the spec results where the child's own is not at hand (a report read
// back from JSON).
func (r *Report) ginkgoReports() []types.Report {
	var out []types.Report
	for _, s := range r.Suites {
		for _, t := range s.Targets {
			if gr, ok := r.ginkgo[[2]string{s.Name, t.Target.Name}]; ok {
				out = append(out, gr)
				continue
			}
			out = append(out, synthesizeGinkgo(s.Name, t))
		}
	}
	return out
}

// synthesizeGinkgo builds a Ginkgo report equivalent to t's results.
func synthesizeGinkgo(suite string, t TargetReport) types.Report {
	gr := types.Report{
		SuiteDescription: fmt.Sprintf("%s [%s]", suite, t.Target.Name),
		SuiteSucceeded:   !t.Failed(),
		RunTime:          time.Duration(t.DurationSeconds * float64(time.Second)),
	}
	for _, sp := range t.Specs {
		gr.SpecReports = append(gr.SpecReports, synthesizeSpec(sp))
	}
	return gr
}

func synthesizeSpec(sp SpecResult) types.SpecReport {
	state := types.SpecStateFailed
	switch sp.State {
	case StatePassed, StateListed:
		state = types.SpecStatePassed
	case StateSkipped:
		state = types.SpecStateSkipped
	case StatePending:
		state = types.SpecStatePending
	case StatePanicked:
		state = types.SpecStatePanicked
	case StateTimedout:
		state = types.SpecStateTimedout
	case StateInterrupted:
		state = types.SpecStateInterrupted
	case StateAborted:
		state = types.SpecStateAborted
	}
	return types.SpecReport{
		LeafNodeType:   types.NodeTypeIt,
		LeafNodeText:   sp.Name,
		LeafNodeLabels: sp.Labels,
		State:          state,
		RunTime:        time.Duration(sp.DurationSeconds * float64(time.Second)),
		Failure: types.Failure{
			Message:         sp.Message,
			Location:        parseLocation(sp.Location),
			FailureNodeType: types.NodeTypeIt,
		},
		LeafNodeLocation: parseLocation(sp.Location),
		NumAttempts:      1,
	}
}

// parseLocation turns "file:line" back into a code location.
func parseLocation(s string) types.CodeLocation {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return types.CodeLocation{FileName: s}
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return types.CodeLocation{FileName: s}
	}
	return types.CodeLocation{FileName: s[:i], LineNumber: n}
}

// errNoReport is returned when a child left no parseable Ginkgo report.
var errNoReport = errors.New("child left no Ginkgo report")
