package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/tools/schedbench"
)

// BenchSchedulerOptions are the settings of `kubelab bench scheduler`.
type BenchSchedulerOptions struct {
	// Targets are the schedulers (schedbench.ParseTarget syntax).
	Targets []string
	// Workloads is a workloads file ("": the embedded one); Only keeps the
	// named workloads.
	Workloads string
	Only      []string
	// Store is the store of the kubelab API server started for each run;
	// Kubeconfig, when set, is an API server of the user's instead.
	Store      string
	Kubeconfig string
	// QPS is the schedulers' client QPS (burst 2×).
	QPS float32
	// Full runs the workloads' full sizes.
	Full bool
	// JSON, when set, is a file the results are written to.
	JSON string
}

// RunBenchScheduler runs the scheduler benchmark.
func RunBenchScheduler(ctx context.Context, reg *spec.Registry, opts BenchSchedulerOptions, cmd *cobra.Command) ([]*schedbench.Result, error) {
	data := schedbench.DefaultWorkloads
	if opts.Workloads != "" {
		var err error
		if data, err = os.ReadFile(opts.Workloads); err != nil {
			return nil, err
		}
	}
	f, err := schedbench.Load(data)
	if err != nil {
		return nil, err
	}
	if len(opts.Only) > 0 {
		var keep []schedbench.Workload
		for _, w := range f.Workloads {
			for _, o := range opts.Only {
				if w.Name == o {
					keep = append(keep, w)
				}
			}
		}
		if len(keep) == 0 {
			return nil, errors.New("--workload: no workload of the file has that name")
		}
		f.Workloads = keep
	}
	if len(opts.Targets) == 0 {
		opts.Targets = []string{"default-scheduler"}
	}
	var targets []schedbench.Target
	for _, s := range opts.Targets {
		t, err := schedbench.ParseTarget(s)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if opts.Store == "" {
		opts.Store = "memory"
	}
	start := func(ctx context.Context) (string, func(), error) {
		dataDir, err := os.MkdirTemp(DefaultBenchDataRoot, "kubelab-bench-scheduler-")
		if err != nil {
			return "", nil, err
		}
		kubeconfig := filepath.Join(dataDir, "bench.kubeconfig")
		sctx, stop := context.WithCancel(ctx)
		ready := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			done <- RunAPIServer(sctx, reg, APIServerOptions{Store: opts.Store, DataDir: dataDir, Listen: "127.0.0.1:0", Kubeconfig: kubeconfig}, cmd.ErrOrStderr(), func(url string) { ready <- url })
		}()
		select {
		case <-ready:
		case err := <-done:
			stop()
			_ = os.RemoveAll(dataDir)
			if err == nil {
				err = errors.New("the API server stopped before it was ready")
			}
			return "", nil, err
		}
		return kubeconfig, func() { stop(); <-done; _ = os.RemoveAll(dataDir) }, nil
	}
	rs, err := schedbench.Run(ctx, f, targets, schedbench.Options{
		Exe: exe, StartAPIServer: start, Kubeconfig: opts.Kubeconfig, QPS: opts.QPS, Full: opts.Full, Progress: cmd.ErrOrStderr(),
	})
	schedbench.WriteTable(cmd.OutOrStdout(), rs)
	if opts.JSON != "" {
		if jerr := schedbench.WriteJSON(opts.JSON, rs); jerr != nil && err == nil {
			err = jerr
		}
	}
	return rs, err
}

func newBenchSchedulerCommand(reg *spec.Registry) *cobra.Command {
	opts := BenchSchedulerOptions{}
	cmd := &cobra.Command{
		Use:   "scheduler",
		Short: "Benchmark schedulers on scheduler_perf-shaped workloads, through the API",
		Long: `Run the workloads of a YAML file (default: tools/schedbench/workloads.yaml,
embedded: basic, topology-spread, pod-anti-affinity, preemption-churn; nodes
4 cpu / 32Gi / 110 pods, pods 100m / 500Mi) against each --target, each run
on a fresh kubelab API server (--store, on tmpfs) or on --kubeconfig.

Targets, compared on the same workload in one run:
  PROFILE               kubelab scheduler --profile PROFILE (default-scheduler, binpack-scheduler, ...)
  extender=URL          kubelab scheduler, default profile + the HTTP extender at URL
  LABEL=/path/binary    a binary with kube-scheduler's flags (e.g. upstream=/usr/local/bin/kube-scheduler)
  name=NAME             a scheduler process of yours, already running against --kubeconfig

The nodes (and initPods) are created first, then the measured pods; then the
scheduler is started (a running one sees the pods as they are created).
Reported, from the API only: pods bound, throughput (average from the first
bind to the last, and p50/p90/p99 of the binds per one-second window),
latency (from when the scheduler could see a pod to its bind, as seen by a
watch), nodes overcommitted, final zone skew, init pods preempted, and cpu
utilization per node (min/mean/max). The schedulers' client QPS is --qps
(burst 2×): say it when you compare.`,
		Example: `  kubelab bench scheduler --workload basic
  kubelab bench scheduler --target default-scheduler --target upstream=/usr/local/bin/kube-scheduler --qps 1000 --json out.json
  kubelab bench scheduler --full --workloads my-workloads.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := RunBenchScheduler(cmd.Context(), reg, opts, cmd)
			return err
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&opts.Targets, "target", nil, "scheduler to bench (repeatable; default default-scheduler): PROFILE, extender=URL, LABEL=/path/binary, name=NAME")
	f.StringVar(&opts.Workloads, "workloads", "", "workloads YAML file (default: the embedded tools/schedbench/workloads.yaml)")
	f.StringSliceVar(&opts.Only, "workload", nil, "run only these workloads of the file")
	f.StringVar(&opts.Store, "store", "memory", "store plugin of the kubelab API server started for each run")
	f.StringVar(&opts.Kubeconfig, "kubeconfig", "", "bench on this API server instead of starting kubelab's")
	f.Float32Var(&opts.QPS, "qps", 1000, "client QPS of the schedulers started (burst 2x)")
	f.BoolVar(&opts.Full, "full", false, "use the workloads' full sizes (fullCount)")
	f.StringVar(&opts.JSON, "json", "", "also write the results to this JSON file")
	return cmd
}
