// Command mutation measures how many realistic bugs a conformance suite
// catches: it applies one mutant at a time (Find: flipped comparisons,
// && ↔ ||, dropped !, off-by-one constants, removed if-body statements,
// early returns, swapped +/-) to the source of one reference plugin,
// builds the kubelab binary with the mutated file through `go build
// -overlay` (the repository is never modified or copied), runs one suite
// against the plugin with that binary (`kubelab conform --suite S --target
// S=PLUGIN`, the runner's child included) under a per-mutant timeout, and
// reports each mutant as killed (the suite failed), survived (it passed),
// timeout, or not compiled (left out of the score).
//
//	go run ./tools/mutation --suite store --target memory --pkg plugins/store/memory --sample 30 --seed 1
//
// Writes OUT/mutation.md and OUT/mutation.json (default _out/mutation).
// Run from the repository root. Opt-in (make mutation), never in CI: every
// mutant costs a link of the binary and a run of the suite.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Outcome is what the suite did to a mutant.
type Outcome string

// The outcomes.
const (
	// Killed: the suite failed against the mutant.
	Killed Outcome = "killed"
	// Survived: the suite passed against the mutant.
	Survived Outcome = "survived"
	// Timeout: the suite did not finish within the per-mutant timeout
	// (counted as killed: a hang is a caught bug).
	Timeout Outcome = "timeout"
	// NotCompiled: the mutant does not build; it is not a bug the suite
	// could catch and is left out of the score.
	NotCompiled Outcome = "not-compiled"
	// Error: the run could not be judged (bad usage, the harness broke).
	Error Outcome = "error"
	// Equivalent: the suite passed, but the mutant is listed in the
	// equivalents file as changing nothing the contract can observe; left
	// out of the score, listed with its reason.
	Equivalent Outcome = "equivalent"
)

// Result is one mutant's outcome.
type Result struct {
	Mutant
	Outcome  Outcome `json:"outcome"`
	Seconds  float64 `json:"seconds"`
	Detail   string  `json:"detail,omitempty"`
	Mutation string  `json:"mutation"`
}

// Report is a whole run, as mutation.json holds it.
type Report struct {
	Suite      string   `json:"suite"`
	Target     string   `json:"target"`
	Package    string   `json:"package"`
	Seed       uint64   `json:"seed"`
	Sample     int      `json:"sample"`
	Population int      `json:"population"`
	Killed     int      `json:"killed"`
	Survived   int      `json:"survived"`
	Timeout    int      `json:"timeout"`
	Invalid    int      `json:"notCompiled"`
	Errors     int      `json:"errors"`
	Equivalent int      `json:"equivalent"`
	Score      float64  `json:"score"`
	Results    []Result `json:"results"`
}

type options struct {
	suite, target, pkg, out string
	sample                  int
	seed                    uint64
	timeout                 time.Duration
	label                   string
	equivalents             string
	rescore                 string
}

func main() {
	var o options
	flag.StringVar(&o.suite, "suite", "store", "conformance suite to run")
	flag.StringVar(&o.target, "target", "memory", "the suite's target: the plugin whose source is mutated")
	flag.StringVar(&o.pkg, "pkg", "plugins/store/memory", "the plugin's package directory (its non-test .go files are mutated)")
	flag.StringVar(&o.out, "out", "_out/mutation", "directory for mutation.md and mutation.json")
	flag.IntVar(&o.sample, "sample", 0, "judge this many compiling mutants, drawn at random (0: all)")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the sample")
	flag.DurationVar(&o.timeout, "timeout", 0, "per-mutant timeout of the suite (default: 3× the unmutated run, at least 1m)")
	flag.StringVar(&o.label, "label-filter", "", "Ginkgo label filter passed to conform")
	flag.StringVar(&o.equivalents, "equivalents", "tools/mutation/equivalents.txt", "file of mutants judged equivalent: lines \"ID reason\" (ID as in mutation.json); a missing file lists none")
	flag.StringVar(&o.rescore, "rescore", "", "run nothing: re-judge the survivors of this mutation.json against --equivalents and rewrite the reports in --out")
	flag.Parse()
	// Interrupted, the run kills the suite it is running and removes its
	// temporary directory before it exits.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutation:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	equiv, err := readEquivalents(o.equivalents)
	if err != nil {
		return err
	}
	if o.rescore != "" {
		return rescore(o, equiv)
	}
	muts, err := findAll(o.pkg)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(o.seed, o.seed^0x9e3779b97f4a7c15))
	order := rng.Perm(len(muts))
	work, err := os.MkdirTemp("", "kl-mutation-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	// The unmutated binary must pass: otherwise nothing can be judged.
	bin := filepath.Join(work, "kubelab")
	if out, err := buildBinary(ctx, bin, ""); err != nil {
		return fmt.Errorf("building the unmutated kubelab: %v\n%s", err, out)
	}
	start := time.Now()
	if outcome, detail := runSuite(ctx, bin, o, 30*time.Minute); outcome != Survived {
		return fmt.Errorf("the unmutated %s suite against %s does not pass (%s): %s", o.suite, o.target, outcome, detail)
	}
	base := time.Since(start)
	if o.timeout == 0 {
		o.timeout = max(3*base, time.Minute)
	}
	fmt.Fprintf(os.Stderr, "mutation: %d mutants in %s; unmutated run %s; per-mutant timeout %s\n", len(muts), o.pkg, base.Round(time.Second), o.timeout)

	rep := Report{Suite: o.suite, Target: o.target, Package: o.pkg, Seed: o.seed, Sample: o.sample, Population: len(muts)}
	judged := 0
	for _, i := range order {
		if (o.sample > 0 && judged >= o.sample) || ctx.Err() != nil {
			break
		}
		m := muts[i]
		r := judge(ctx, o, work, m)
		if reason, ok := equiv[m.ID()]; ok && r.Outcome == Survived {
			r.Outcome, r.Detail = Equivalent, reason
		}
		rep.Results = append(rep.Results, r)
		fmt.Fprintf(os.Stderr, "mutation: %-12s %s (%.0fs) %s\n", r.Outcome, m, r.Seconds, r.Detail)
		if r.Outcome != NotCompiled {
			judged++
		}
	}
	return write(o.out, &rep)
}

// rescore re-judges a saved report's survivors against equiv and rewrites
// the reports.
func rescore(o options, equiv map[string]string) error {
	b, err := os.ReadFile(o.rescore)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", o.rescore, err)
	}
	for i := range rep.Results {
		r := &rep.Results[i]
		reason, ok := equiv[r.ID()]
		switch {
		case ok && (r.Outcome == Survived || r.Outcome == Equivalent):
			r.Outcome, r.Detail = Equivalent, reason
		case !ok && r.Outcome == Equivalent:
			r.Outcome, r.Detail = Survived, ""
		}
	}
	return write(o.out, &rep)
}

// write tallies rep and writes mutation.json and mutation.md into dir,
// printing the Markdown.
func write(dir string, rep *Report) error {
	rep.tally()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "mutation.json"), b, 0o644); err != nil {
		return err
	}
	md := rep.Markdown()
	fmt.Print(md)
	return os.WriteFile(filepath.Join(dir, "mutation.md"), []byte(md), 0o644)
}

// readEquivalents reads the equivalents file: "ID reason" per line, '#'
// comments and blank lines ignored. A missing file lists none.
func readEquivalents(path string) (map[string]string, error) {
	out := map[string]string{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		id, reason, _ := strings.Cut(l, " ")
		out[id] = strings.TrimSpace(reason)
	}
	return out, nil
}

// findAll lists the mutants of every non-test .go file of dir.
func findAll(dir string) ([]Mutant, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []Mutant
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		ms, err := Find(f, src)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no mutants in %s", dir)
	}
	return out, nil
}

// judge builds the binary with m applied (through an overlay) and runs the
// suite with it.
func judge(ctx context.Context, o options, work string, m Mutant) (r Result) {
	r = Result{Mutant: m, Mutation: m.String()}
	start := time.Now()
	defer func() { r.Seconds = time.Since(start).Seconds() }()
	src, err := os.ReadFile(m.File)
	if err != nil {
		r.Outcome, r.Detail = Error, err.Error()
		return r
	}
	abs, err := filepath.Abs(m.File)
	if err != nil {
		r.Outcome, r.Detail = Error, err.Error()
		return r
	}
	mutated := filepath.Join(work, "mutant.go")
	overlay := filepath.Join(work, "overlay.json")
	ov, _ := json.Marshal(map[string]map[string]string{"Replace": {abs: mutated}})
	if err := errors.Join(os.WriteFile(mutated, Apply(src, m), 0o644), os.WriteFile(overlay, ov, 0o644)); err != nil {
		r.Outcome, r.Detail = Error, err.Error()
		return r
	}
	bin := filepath.Join(work, "kubelab-mutant")
	if out, err := buildBinary(ctx, bin, overlay); err != nil {
		r.Outcome, r.Detail = NotCompiled, firstLine(string(out))
		return r
	}
	r.Outcome, r.Detail = runSuite(ctx, bin, o, o.timeout)
	return r
}

// buildBinary builds ./tools/kubelab into bin, with overlay when set.
func buildBinary(ctx context.Context, bin, overlay string) ([]byte, error) {
	args := []string{"build", "-o", bin}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./tools/kubelab")...)
	return cmd.CombinedOutput()
}

// runSuite runs `bin conform` for the suite and target: exit 0 is
// Survived, exit 1 (a spec failed, a child crashed) Killed, no end within
// timeout Timeout (the process group is killed), anything else Error.
func runSuite(ctx context.Context, bin string, o options, timeout time.Duration) (Outcome, string) {
	args := []string{"conform", "--suite", o.suite, "--target", o.suite + "=" + o.target}
	if o.label != "" {
		args = append(args, "--label-filter", o.label)
	}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return Error, err.Error()
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		switch {
		case err == nil:
			return Survived, ""
		case errors.As(err, &ee) && ee.ExitCode() == 1:
			return Killed, failedCapabilities(out.String())
		default:
			return Error, fmt.Sprintf("%v: %s", err, lastLines(out.String(), 5))
		}
	case <-time.After(timeout):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return Timeout, ""
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return Error, ctx.Err().Error()
	}
}

// failedCapabilities picks the FAIL rows of conform's matrix.
func failedCapabilities(out string) string {
	var caps []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[1] == "FAIL" {
			caps = append(caps, f[0])
		}
	}
	return strings.Join(caps, ", ")
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	return ""
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, " | ")
}

// tally counts the outcomes and computes Score: (killed + timeout) over
// every judged mutant (not-compiled, equivalent and errors left out).
func (r *Report) tally() {
	r.Killed, r.Survived, r.Timeout, r.Invalid, r.Errors, r.Equivalent = 0, 0, 0, 0, 0, 0
	for _, x := range r.Results {
		switch x.Outcome {
		case Killed:
			r.Killed++
		case Survived:
			r.Survived++
		case Timeout:
			r.Timeout++
		case NotCompiled:
			r.Invalid++
		case Equivalent:
			r.Equivalent++
		default:
			r.Errors++
		}
	}
	if n := r.Killed + r.Survived + r.Timeout; n > 0 {
		r.Score = float64(r.Killed+r.Timeout) / float64(n)
	}
}

// Markdown is the report for people: the tally per suite and plugin, then
// every survivor with file:line and its mutation.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Mutation score: %s suite against %s (%s)\n\n", r.Suite, r.Target, r.Package)
	sample := "all mutants"
	if r.Sample > 0 {
		sample = fmt.Sprintf("a random sample of %d compiling mutants of %d (seed %d)", r.Sample, r.Population, r.Seed)
	}
	fmt.Fprintf(&b, "Judged: %s.\n\n", sample)
	fmt.Fprintf(&b, "| suite | plugin | killed | survived | timeout | equivalent | not compiled | errors | score |\n|---|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d | %d | %.0f%% |\n\n", r.Suite, r.Target, r.Killed, r.Survived, r.Timeout, r.Equivalent, r.Invalid, r.Errors, 100*r.Score)
	b.WriteString("Score: killed and timed out over killed, survived and timed out (equivalent and not-compiled mutants left out).\n\n")
	for _, x := range r.Results {
		if x.Outcome == Equivalent {
			fmt.Fprintf(&b, "- equivalent `%s:%d`: %s `%s` → `%s` — %s\n", x.File, x.Line, x.Operator, short(x.Old), short(x.New), x.Detail)
		}
	}
	if r.Equivalent > 0 {
		b.WriteString("\n")
	}
	var surv []Result
	for _, x := range r.Results {
		if x.Outcome == Survived {
			surv = append(surv, x)
		}
	}
	if len(surv) == 0 {
		b.WriteString("No survivors.\n")
		return b.String()
	}
	b.WriteString("Survivors:\n\n")
	for _, x := range surv {
		fmt.Fprintf(&b, "- `%s:%d`: %s `%s` → `%s` (id `%s`)\n", x.File, x.Line, x.Operator, short(x.Old), short(x.New), x.ID())
	}
	return b.String()
}
