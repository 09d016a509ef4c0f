package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/kubelab/kubelab/conformance/containerd"
	"github.com/kubelab/kubelab/plugins/runtime/cri"
	"github.com/kubelab/kubelab/plugins/runtime/imagestore"
	"github.com/kubelab/kubelab/plugins/runtime/process"
	"github.com/kubelab/kubelab/plugins/runtime/process/criserver"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/tools/runtimebench"
)

// BenchRuntimeOptions are the settings of `kubelab bench runtime`.
type BenchRuntimeOptions struct {
	// Runtimes are the runtimes to bench, one after the other: "process"
	// (kubelab's, served over CRI gRPC from this process) and
	// "containerd" (a real containerd started for the run).
	Runtimes []string
	// Images is the directory of the test image archives (make images).
	Images string
	// PodCIDR is the process runtime's pod network.
	PodCIDR string
	// JSON, when set, is a file the results are written to.
	JSON string
	// Bench is the workload.
	Bench runtimebench.Config
}

// newBenchRuntimeCommand is `kubelab bench runtime`.
func newBenchRuntimeCommand() *cobra.Command {
	opts := BenchRuntimeOptions{}
	cmd := &cobra.Command{
		Use:   "runtime",
		Short: "Pod start/stop latency and memory per pod: the process runtime and containerd side by side",
		Long: `runtime starts N pods (a sandbox and a workload container each) one after
another on each runtime, keeps them all running, then stops and removes
them one after another. Both runtimes are driven the same way, through CRI
gRPC with k8s.io/cri-client (plugins/runtime/cri):

  process     kubelab's process runtime, served from this process
  containerd  Debian's containerd 1.6 with runc and the CNI bridge plugin,
              started for the run (conformance/containerd)

It prints start latency (RunPodSandbox+CreateContainer+StartContainer) and
stop latency (StopPodSandbox+RemovePodSandbox) percentiles, and the memory a
running pod costs: the PSS of its shim(s), pause process and container,
measured while all N pods run. Needs root and the test images:

  make images && sudo kubelab bench runtime --pods 100`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := RunBenchRuntime(cmd.Context(), opts, cmd.OutOrStdout(), cmd.ErrOrStderr())
			return err
		},
	}
	cmd.Flags().StringSliceVar(&opts.Runtimes, "runtimes", []string{"process", "containerd"}, "runtimes to bench, in order")
	cmd.Flags().IntVar(&opts.Bench.Pods, "pods", 100, "pods per runtime")
	cmd.Flags().StringVar(&opts.Images, "images", filepath.Join("_out", "images"), "directory of the test image archives (make images)")
	cmd.Flags().StringVar(&opts.PodCIDR, "pod-cidr", "10.199.200.0/24", "the process runtime's pod network")
	cmd.Flags().StringVar(&opts.JSON, "json", "", "also write the results to this JSON file")
	return cmd
}

// RunBenchRuntime runs the runtime benchmark on each of opts.Runtimes and
// prints a table of the results to out, progress to errOut.
func RunBenchRuntime(ctx context.Context, opts BenchRuntimeOptions, out, errOut io.Writer) ([]*runtimebench.Result, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("bench runtime: needs root (namespaces, cgroups, mounts): %w", spec.ErrUnsupported)
	}
	archives, err := filepath.Glob(filepath.Join(opts.Images, "*.tar"))
	if err != nil || len(archives) == 0 {
		return nil, fmt.Errorf("bench runtime: no image archives in %s (run `make images`, or give --images)", opts.Images)
	}
	var results []*runtimebench.Result
	for _, name := range opts.Runtimes {
		fprintf(errOut, "bench runtime: %s: %d pods...\n", name, max(opts.Bench.Pods, 0))
		var res *runtimebench.Result
		switch name {
		case "process":
			res, err = benchProcessRuntime(ctx, opts, archives)
		case "containerd":
			res, err = benchContainerd(ctx, opts, archives)
		default:
			err = fmt.Errorf("bench runtime: unknown runtime %q (known: process, containerd): %w", name, spec.ErrInvalid)
		}
		if err != nil {
			return results, err
		}
		results = append(results, res)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fprintf(tw, "RUNTIME\tPODS\tSTART p50\tSTART p99\tSTOP p50\tSTOP p99\tMEMORY/POD (PSS)\tPROCESSES/POD\tDAEMON RSS GROWTH\n")
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
	mib := func(b float64) string { return fmt.Sprintf("%.2f MiB", b/(1<<20)) }
	for _, r := range results {
		fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\n", r.Runtime, r.Pods, ms(r.Start.P50), ms(r.Start.P99), ms(r.Stop.P50), ms(r.Stop.P99),
			mib(float64(r.PodPSSBytes)), r.PodProcesses, mib(float64(r.DaemonRSSGrowth)))
	}
	if err := tw.Flush(); err != nil {
		return results, err
	}
	if opts.JSON != "" {
		data, err := json.MarshalIndent(results, "", "  ")
		if err != nil {
			return results, err
		}
		if err := os.WriteFile(opts.JSON, append(data, '\n'), 0o644); err != nil {
			return results, err
		}
	}
	return results, nil
}

// benchProcessRuntime serves the process runtime from this process on a
// unix socket and benches it through the cri plugin. Its shims re-execute
// this binary (`kubelab runtime process-shim`).
func benchProcessRuntime(ctx context.Context, opts BenchRuntimeOptions, archives []string) (_ *runtimebench.Result, err error) {
	root, err := os.MkdirTemp("", "kl-bench-process-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	st, err := imagestore.Open(filepath.Join(root, "images"))
	if err != nil {
		return nil, err
	}
	for _, a := range archives {
		if _, err := st.Import(ctx, a); err != nil {
			return nil, fmt.Errorf("bench runtime: importing %s: %w", a, err)
		}
	}
	rt, closeRT, err := process.Plugin().New(ctx, spec.RuntimeConfig{RootDir: root, Options: map[string]string{
		process.OptionPodCIDR: opts.PodCIDR, process.OptionInstance: fmt.Sprintf("bn%d", os.Getpid()%100000),
	}})
	if err != nil {
		return nil, err
	}
	defer closeRT()
	endpoint := "unix://" + filepath.Join(root, "cri.sock")
	lis, err := criserver.Listen(endpoint)
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer()
	criserver.Register(srv, rt)
	go srv.Serve(lis)
	defer srv.Stop()
	client, err := cri.Connect(ctx, endpoint, endpoint, time.Minute)
	if err != nil {
		return nil, err
	}
	defer client.Close(context.Background())
	cfg := opts.Bench
	cfg.Helpers = func() []int {
		return runtimebench.Pids(func(argv []string) bool {
			return len(argv) >= 4 && argv[1] == "runtime" && argv[2] == process.ShimCommand && strings.HasPrefix(argv[3], root+"/")
		})
	}
	cfg.DaemonPid = os.Getpid()
	return runtimebench.Run(ctx, "process", client, cfg)
}

// benchContainerd starts a containerd for the run and benches it through
// the cri plugin.
func benchContainerd(ctx context.Context, opts BenchRuntimeOptions, archives []string) (_ *runtimebench.Result, err error) {
	d, err := containerd.Start(ctx, containerd.Options{Images: archives})
	if err != nil {
		return nil, fmt.Errorf("bench runtime: %w", err)
	}
	defer func() {
		if serr := d.Stop(); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	client, err := cri.Connect(ctx, d.Endpoint(), d.Endpoint(), time.Minute)
	if err != nil {
		return nil, err
	}
	defer client.Close(context.Background())
	cfg := opts.Bench
	cfg.Helpers = d.ShimPids
	cfg.DaemonPid = d.Pid()
	return runtimebench.Run(ctx, "containerd "+containerdVersion(ctx, client), client, cfg)
}

// containerdVersion returns the version containerd reports through CRI.
func containerdVersion(ctx context.Context, rt spec.Runtime) string {
	v, err := rt.Version(ctx, "v1")
	if err != nil {
		return "?"
	}
	return v.RuntimeVersion
}
