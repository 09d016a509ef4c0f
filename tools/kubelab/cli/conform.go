package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubelab/kubelab/conformance/runner"
	crt "github.com/kubelab/kubelab/conformance/runtime"
)

// DefaultGoldenFile is where `kubelab conform --list --golden` looks for the
// golden list, relative to the working directory.
const DefaultGoldenFile = "conformance/conformance.yaml"

type conformFlags struct {
	suites         []string
	store          []string
	storeEndpoints []string
	runtimes       []string
	criEndpoints   []string
	schedulers     []string
	schedulerNames []string
	extenderURLs   []string
	schedulerAPI   string
	targets        []string
	endpoints      []string
	labelFilter    string
	focus          []string
	skip           []string
	list           bool
	golden         bool
	goldenFile     string
	rerunFailed    string
	junit          string
	reportDir      string
	timeout        time.Duration
	seed           int64
	verbose        bool
	images         string
}

func newConformCommand(r *runner.Runner) *cobra.Command {
	f := &conformFlags{}
	cmd := &cobra.Command{
		Use:   "conform",
		Short: "Run the conformance suites against plugins and report per capability",
		Long: `Run the conformance suites against plugins, one child process per suite and
target, and print a capability × target matrix (passed / failed / skipped).

Targets are chosen by flags, not by editing code: registered plugin names
(--store memory,etcd), an external server of yours (--store-endpoints URL,...,
tested as "etcd@endpoints"), or the pseudo-target "etcd-server" (a real etcd
started for the run). Without target flags every registered plugin runs,
except deliberately broken ones ("broken-*"), plus etcd-server when
/usr/bin/etcd exists.

The runtime suite runs against "process" (kubelab's process runtime in the
suite's process), "process-grpc" (the same served by "kubelab runtime
--listen" and driven over CRI gRPC) and "containerd" (a real containerd
started for the run, when it is installed), or against what --runtime names
(registered runtimes, process-grpc, containerd) and any CRI runtime of yours
(--cri-endpoint unix:///run/containerd/containerd.sock; import the test
images of _out/images into it first). It needs the test images (the OCI
archives busybox.tar, workload.tar and pause.tar that "make images" writes to
_out/images): --images DIR, else the directory in $KUBELAB_IMAGES, else the
first _out/images in the working directory or one of its parents. Every
registered runtime under test is started with a random free pod range in its
"pod-cidr" option (spec.RuntimeOptionPodCIDR, which every runtime accepts).

The scheduler suite judges a scheduler only through the API: kubelab's
scheduler with a profile (--scheduler PROFILE[@STORE], started with
"kubelab apiserver --store STORE", default memory), kubelab's scheduler with
an HTTP extender of yours (--extender-url URL), or a scheduler process of
yours serving a schedulerName (--scheduler-name NAME, with the API server it
watches: --scheduler-apiserver KUBECONFIG). Without targets: default-scheduler
over every store, and the baselines over memory.

The node suite judges a kubelet only through the API (its Node and Lease,
the status it writes for the pods bound to it): "process" (kubelab node over
the process runtime with the test images, against "kubelab apiserver --store
memory" or --endpoints node=KUBECONFIG), or a node of yours already
registered (--target node=name=NODE --endpoints node=KUBECONFIG; its runtime
must hold the test images). Without targets: process.

Exit status: 0 when everything passed, 1 when a spec failed or a child
crashed (or, with --list --golden, when the golden list is out of sync),
2 for bad flags.`,
		Example: `  kubelab conform
  kubelab conform --suite store --store memory --label-filter 'store:watch-ordered || store:cas'
  kubelab conform --store-endpoints http://127.0.0.1:2379 --report _out/report --junit _out/junit.xml
  kubelab conform --suite runtime --runtime process,containerd
  kubelab conform --suite runtime --cri-endpoint unix:///run/containerd/containerd.sock
  kubelab conform --suite scheduler --scheduler default-scheduler@etcd,binpack-scheduler
  kubelab conform --suite scheduler --extender-url http://127.0.0.1:8888
  kubelab conform --suite scheduler --scheduler-name my-scheduler --scheduler-apiserver ~/.kube/config
  kubelab conform --suite node
  kubelab conform --suite node --target node=name=worker-1 --endpoints node=~/.kube/config
  kubelab conform --rerun-failed _out/report/report.json
  kubelab conform --list
  kubelab conform --list --golden >> conformance/conformance.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runConform(cmd, r, f)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.suites, "suite", nil, "suites to run, comma-separated (default all)")
	fl.StringSliceVar(&f.store, "store", nil, `store targets: registered plugin names, "etcd-server", "PLUGIN@endpoints"`)
	fl.StringSliceVar(&f.storeEndpoints, "store-endpoints", nil, `client URLs of an etcd of yours, tested as target "etcd@endpoints"`)
	fl.StringSliceVar(&f.runtimes, "runtime", nil, `runtime targets: registered runtime names, "process-grpc", "containerd"`)
	fl.StringSliceVar(&f.criEndpoints, "cri-endpoint", nil, "CRI sockets of runtimes of yours (unix:///PATH), each a runtime target")
	fl.StringSliceVar(&f.schedulers, "scheduler", nil, `scheduler targets: profiles ("default-scheduler", "binpack-scheduler@etcd": PROFILE[@STORE])`)
	fl.StringSliceVar(&f.schedulerNames, "scheduler-name", nil, "schedulerNames of scheduler processes of yours, each a scheduler target (needs --scheduler-apiserver)")
	fl.StringSliceVar(&f.extenderURLs, "extender-url", nil, "HTTP scheduler extenders of yours (verbs filter, prioritize), each a target: kubelab's default profile calling it")
	fl.StringVar(&f.schedulerAPI, "scheduler-apiserver", "", "API server (kubeconfig file or URL) the scheduler suite uses instead of starting kubelab's")
	fl.StringArrayVar(&f.targets, "target", nil, "SUITE=NAME[,NAME...]: targets of any suite (repeatable)")
	fl.StringArrayVar(&f.endpoints, "endpoints", nil, "SUITE=URL[,URL...]: endpoints of any suite (repeatable)")
	fl.StringVar(&f.labelFilter, "label-filter", "", `Ginkgo label filter, e.g. "store:watch-ordered && !Slow"`)
	fl.StringArrayVar(&f.focus, "focus", nil, "run only specs whose \"SUITE FULL TEXT\" matches this regexp (repeatable)")
	fl.StringArrayVar(&f.skip, "skip", nil, "skip specs whose \"SUITE FULL TEXT\" matches this regexp (repeatable)")
	fl.BoolVar(&f.list, "list", false, "list the specs that would run, run nothing")
	fl.BoolVar(&f.golden, "golden", false, "with --list: print golden-list entries for specs missing from --golden-file")
	fl.StringVar(&f.goldenFile, "golden-file", DefaultGoldenFile, "the golden list for --golden")
	fl.StringVar(&f.rerunFailed, "rerun-failed", "", "rerun only the failed specs of this JSON report (or report directory)")
	fl.StringVar(&f.junit, "junit", "", "write a JUnit XML report to this file")
	fl.StringVar(&f.reportDir, "report", "", "write report.json, report.md and report.html into this directory")
	fl.DurationVar(&f.timeout, "timeout", runner.DefaultTimeout, "time limit of each suite against each target")
	fl.Int64Var(&f.seed, "seed", runner.DefaultSeed, "seed of Ginkgo's spec order")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "verbose Ginkgo progress")
	fl.StringVar(&f.images, "images", "", "directory of the runtime suite's test image archives (sets $"+crt.ImagesEnv+" for the suites; default $"+crt.ImagesEnv+", else _out/images)")
	return cmd
}

// parseSuiteValues turns "SUITE=a,b" flags into a map, appending to into.
func parseSuiteValues(flag string, values []string, into map[string][]string) error {
	for _, v := range values {
		suite, list, ok := strings.Cut(v, "=")
		if !ok || suite == "" || list == "" {
			return fmt.Errorf("--%s %q: want SUITE=VALUE[,VALUE...]", flag, v)
		}
		for _, item := range strings.Split(list, ",") {
			if item = strings.TrimSpace(item); item != "" {
				into[suite] = append(into[suite], item)
			}
		}
	}
	return nil
}

func runConform(cmd *cobra.Command, r *runner.Runner, f *conformFlags) error {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if f.golden && !f.list {
		return errors.New("--golden needs --list")
	}
	if f.images != "" {
		// The suites' children inherit the environment.
		if err := os.Setenv(crt.ImagesEnv, f.images); err != nil {
			return err
		}
	}
	opts := runner.Options{
		Suites:      f.suites,
		Targets:     map[string][]string{},
		Endpoints:   map[string][]string{},
		LabelFilter: f.labelFilter,
		Focus:       f.focus,
		Skip:        f.skip,
		List:        f.list,
		RerunFailed: f.rerunFailed,
		Seed:        f.seed,
		Timeout:     f.timeout,
		Verbose:     f.verbose,
		Out:         out,
		JUnit:       f.junit,
		ReportDir:   f.reportDir,
	}
	if len(f.store) > 0 {
		opts.Targets["store"] = append(opts.Targets["store"], f.store...)
	}
	if len(f.storeEndpoints) > 0 {
		opts.Endpoints["store"] = append(opts.Endpoints["store"], f.storeEndpoints...)
	}
	if len(f.runtimes) > 0 {
		opts.Targets["runtime"] = append(opts.Targets["runtime"], f.runtimes...)
	}
	if len(f.criEndpoints) > 0 {
		opts.Endpoints["runtime"] = append(opts.Endpoints["runtime"], f.criEndpoints...)
	}
	opts.Targets["scheduler"] = append(opts.Targets["scheduler"], f.schedulers...)
	for _, n := range f.schedulerNames {
		opts.Targets["scheduler"] = append(opts.Targets["scheduler"], runner.SchedulerNamePrefix+n)
	}
	for _, u := range f.extenderURLs {
		opts.Targets["scheduler"] = append(opts.Targets["scheduler"], runner.ExtenderPrefix+u)
	}
	if len(opts.Targets["scheduler"]) == 0 {
		delete(opts.Targets, "scheduler")
	}
	if f.schedulerAPI != "" {
		opts.Endpoints["scheduler"] = append(opts.Endpoints["scheduler"], f.schedulerAPI)
	}
	if err := parseSuiteValues("target", f.targets, opts.Targets); err != nil {
		return err
	}
	if err := parseSuiteValues("endpoints", f.endpoints, opts.Endpoints); err != nil {
		return err
	}
	if f.list && !f.verbose {
		// A listing's children have nothing to say but the list itself.
		opts.Out = io.Discard
	}

	rep, err := r.Run(cmd.Context(), opts)
	if rep == nil {
		return err
	}
	// Where the reports are goes first, so that the verdict is the last line.
	if f.reportDir != "" {
		fprintf(errOut, "Report: %s\n", filepath.Join(f.reportDir, runner.ReportMarkdownFile))
	}
	if f.junit != "" {
		fprintf(errOut, "JUnit: %s\n", f.junit)
	}
	switch {
	case f.list && f.golden:
		if gerr := printGolden(out, errOut, rep, f.goldenFile); gerr != nil {
			return errors.Join(err, gerr)
		}
	case f.list:
		printList(out, rep)
	default:
		_ = rep.WriteText(out)
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fprintf(errOut, "kubelab: interrupted; the report covers what ran\n")
		} else {
			fprintf(errOut, "kubelab: %v\n", err)
		}
		return exitError{ExitFailed}
	}
	if rep.Failed() {
		return exitError{ExitFailed}
	}
	return nil
}

// printList prints, per suite, the specs a listing found and the targets
// they would run against.
func printList(w io.Writer, rep *runner.Report) {
	for _, s := range rep.Suites {
		type entry struct {
			capability string
			labels     []string
		}
		specs := map[string]entry{}
		var names, targets []string
		for _, t := range s.Targets {
			targets = append(targets, t.Target.Name)
			for _, sp := range t.Specs {
				if sp.Capability == runner.SuiteRow {
					continue
				}
				if _, ok := specs[sp.Name]; !ok {
					names = append(names, sp.Name)
				}
				specs[sp.Name] = entry{sp.Capability, sp.Labels}
			}
		}
		sort.Strings(names)
		fprintf(w, "%s suite: %d specs, targets %s\n", s.Name, len(names), strings.Join(targets, ", "))
		for _, n := range names {
			e := specs[n]
			var extra []string
			for _, l := range e.labels {
				if l != s.Name && l != e.capability {
					extra = append(extra, l)
				}
			}
			line := fmt.Sprintf("  [%s] %s", e.capability, n)
			if len(extra) > 0 {
				line += " {" + strings.Join(extra, ", ") + "}"
			}
			fprintf(w, "%s\n", line)
		}
	}
	for _, f := range rep.Failures() {
		fprintf(w, "FAILED to list %s [%s]: %s\n", f.Suite, f.Target, f.Spec.Message)
	}
}

// printGolden prints YAML entries for the specs missing from the golden
// file to w, and everything else that disagrees to errW. It returns an
// exitError when the list is out of sync. A missing file counts as empty.
func printGolden(w, errW io.Writer, rep *runner.Report, path string) error {
	golden, err := runner.LoadGolden(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if errors.Is(err, fs.ErrNotExist) {
		fprintf(errW, "# %s does not exist: every spec is missing\n", path)
	}
	diff := runner.CompareGolden(golden, runner.GoldenFromReport(rep))
	if diff.Empty() {
		fprintf(errW, "# %s is in sync with the code\n", path)
		return nil
	}
	y, err := runner.MissingYAML(diff.Missing)
	if err != nil {
		return err
	}
	if _, err := w.Write(y); err != nil {
		return err
	}
	rest := diff
	rest.Missing = nil
	if !rest.Empty() {
		fprintf(errW, "%s", rest.String())
	}
	if len(diff.Missing) > 0 {
		fprintf(errW, "# %d entries to add to %s printed on stdout; describe each with MUST statements\n", len(diff.Missing), path)
	}
	return exitError{ExitFailed}
}
