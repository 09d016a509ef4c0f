package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubelab/kubelab/reference/apiserver/apiserverbench"
	"github.com/kubelab/kubelab/spec"
)

// DefaultBenchDataRoot is where `kubelab bench apiserver` puts the data dirs
// of the servers it starts: tmpfs, so that the figures measure the API
// server and the store rather than the disk's fsync.
const DefaultBenchDataRoot = "/dev/shm"

// BenchAPIServerOptions are the settings of `kubelab bench apiserver`.
type BenchAPIServerOptions struct {
	// Stores are the store plugins to start kubelab's API server on, one
	// after the other (ignored with Kubeconfig).
	Stores []string
	// Kubeconfig, when set, benches the API server it points at instead
	// of starting kubelab's (e.g. an upstream kube-apiserver).
	Kubeconfig string
	// Name and StoreLabel describe the Kubeconfig server in the results
	// (e.g. "kube-apiserver", "etcd 3.4 on tmpfs").
	Name, StoreLabel string
	// DataRoot is the directory the started servers' data dirs are made
	// in (DefaultBenchDataRoot: tmpfs).
	DataRoot string
	// JSON, when set, is a file the results are written to.
	JSON string
	// FromJSON, when set, are --json files of earlier runs whose results
	// are printed side by side instead of running the bench.
	FromJSON []string
	// CPUProfile, when set, is a file a CPU profile of the whole run is
	// written to (server and clients alike when the server runs in this
	// process).
	CPUProfile string
	// Bench is the workload.
	Bench apiserverbench.Config
}

// RunBenchAPIServer benches kubelab's API server on each of opts.Stores —
// started in this process as `kubelab apiserver` starts it, over HTTPS with
// a fresh CA, as the cluster admin — or the server of opts.Kubeconfig. It
// prints a table of the results to out and progress to errOut.
func RunBenchAPIServer(ctx context.Context, reg *spec.Registry, opts BenchAPIServerOptions, out, errOut io.Writer) ([]*apiserverbench.Result, error) {
	if len(opts.FromJSON) > 0 {
		return printBenchJSON(opts.FromJSON, out)
	}
	cfg := opts.Bench.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Progress = errOut
	if opts.CPUProfile != "" {
		f, err := os.Create(opts.CPUProfile)
		if err != nil {
			return nil, err
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	if opts.DataRoot == "" {
		opts.DataRoot = DefaultBenchDataRoot
	}
	var results []*apiserverbench.Result
	if opts.Kubeconfig != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", opts.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig: %w", err)
		}
		cfg.Cleanup = true
		t := apiserverbench.Target{Name: opts.Name, Store: opts.StoreLabel, Config: rc}
		r, err := apiserverbench.Run(ctx, t, cfg)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		results = append(results, r)
	} else {
		if len(opts.Stores) == 0 {
			return nil, errors.New("no store to bench: give --store or --kubeconfig")
		}
		for _, name := range opts.Stores {
			if _, err := reg.Store(name); err != nil {
				return nil, err
			}
		}
		for _, name := range opts.Stores {
			r, err := benchKubelab(ctx, reg, name, opts.DataRoot, cfg, errOut)
			if err != nil {
				return results, fmt.Errorf("store %s: %w", name, err)
			}
			results = append(results, r)
		}
	}
	m := results[0].Machine
	fprintf(out, "\n%d CPUs (%s/%s), load average at start %s; each client: QPS %g, burst %d; JSON over HTTPS\n\n",
		m.CPUs, m.OS, m.Arch, m.LoadAverage, cfg.QPS, cfg.Burst)
	if err := apiserverbench.WriteTable(out, results); err != nil {
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

// printBenchJSON prints the results in the --json files side by side.
func printBenchJSON(files []string, out io.Writer) ([]*apiserverbench.Result, error) {
	var results []*apiserverbench.Result
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var rs []*apiserverbench.Result
		if err := json.Unmarshal(data, &rs); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		results = append(results, rs...)
	}
	if len(results) == 0 {
		return nil, errors.New("no results in the --from-json files")
	}
	return results, apiserverbench.WriteTable(out, results)
}

// benchKubelab starts kubelab's API server on the store plugin name with its
// data dir under dataRoot, runs the bench on it, and stops it.
func benchKubelab(ctx context.Context, reg *spec.Registry, name, dataRoot string, cfg apiserverbench.Config, errOut io.Writer) (*apiserverbench.Result, error) {
	dataDir, err := os.MkdirTemp(dataRoot, "kubelab-bench-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dataDir) }()
	kubeconfig := filepath.Join(dataDir, "bench.kubeconfig")
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- RunAPIServer(sctx, reg, APIServerOptions{Store: name, DataDir: dataDir, Listen: "127.0.0.1:0", Kubeconfig: kubeconfig}, errOut, func(url string) { ready <- url })
	}()
	select {
	case <-ready:
	case err := <-done:
		if err == nil {
			err = errors.New("the API server stopped before it was ready")
		}
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			stop()
			<-done
		}
	}()
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	t := apiserverbench.Target{Name: "kubelab", Store: name, Config: rc}
	r, err := apiserverbench.Run(ctx, t, cfg)
	if err != nil {
		return nil, err
	}
	// Say where the store's data was, if it kept any.
	storeDir := filepath.Join(dataDir, "store")
	if entries, err := os.ReadDir(storeDir); err == nil && len(entries) > 0 {
		r.Target.Store = fmt.Sprintf("%s (data on %s)", name, describeFS(storeDir))
	}
	stopped = true
	stop()
	if err := <-done; err != nil {
		return r, fmt.Errorf("stopping the API server: %w", err)
	}
	return r, nil
}

// describeFS says what kind of file system dir is on: "tmpfs /dev/shm" or
// "disk (ext4) /var/tmp", naming the directory under which dir was made.
func describeFS(dir string) string {
	where := filepath.Dir(filepath.Dir(dir))
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return where
	}
	switch int64(st.Type) {
	case unix.TMPFS_MAGIC:
		return "tmpfs " + where
	case unix.EXT4_SUPER_MAGIC:
		return "disk (ext4) " + where
	case unix.XFS_SUPER_MAGIC:
		return "disk (xfs) " + where
	case unix.BTRFS_SUPER_MAGIC:
		return "disk (btrfs) " + where
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs " + where
	default:
		return fmt.Sprintf("file system 0x%x %s", st.Type, where)
	}
}

// newBenchAPIServerCommand is `kubelab bench apiserver`.
func newBenchAPIServerCommand(reg *spec.Registry) *cobra.Command {
	var opts BenchAPIServerOptions
	c := &opts.Bench
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Pod create throughput, LIST and watch latency of kubelab's API server (or any, with --kubeconfig)",
		Long: `apiserver starts kubelab's API server on each --store in turn (over HTTPS
with a fresh CA, as 'kubelab apiserver' does, in this process, with its data
dir under --data-root: tmpfs by default) and loads it with client-go typed
clients, each with its own connection:

  - creates: --pods pods from --clients concurrent clients (creates/s,
    p50/p90/p99 latency; Kubernetes' SLO is p99 <= 1 s for mutating calls);
  - LIST of all those pods, --lists times whole and --lists times in pages
    of --page-size (p50/p99);
  - watch: --watchers concurrent watches, spread over the clients'
    connections, and --watch-events pod creates one at a time; the latency
    is from each create's response to each watcher receiving its event.

Every request must succeed and every watcher must get every event, or the
bench fails. With --kubeconfig it benches that server instead (e.g. an
upstream kube-apiserver) with the same workload, in a new namespace that it
deletes at the end. The table goes to stdout, progress to stderr.

  kubelab bench apiserver                                # memory and etcd, the issue's sizes
  kubelab bench apiserver --store etcd --data-root /var/tmp   # etcd on disk
  kubelab bench apiserver --kubeconfig upstream.kubeconfig --name kube-apiserver --store-label "etcd 3.4, tmpfs"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Kubeconfig != "" && cmd.Flags().Changed("store") {
				return errors.New("--store and --kubeconfig exclude each other: --kubeconfig benches a running server")
			}
			// Flags are always set: 0 is a value here, not "the default".
			if err := opts.Bench.Validate(); err != nil {
				return err
			}
			for i, s := range opts.Stores {
				opts.Stores[i] = strings.TrimSpace(s)
			}
			_, err := RunBenchAPIServer(cmd.Context(), reg, opts, cmd.OutOrStdout(), cmd.ErrOrStderr())
			return err
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&opts.Stores, "store", []string{"memory", "etcd"}, "store plugins to start kubelab's API server on, comma-separated")
	f.StringVar(&opts.Kubeconfig, "kubeconfig", "", "bench the API server of this kubeconfig instead of starting kubelab's")
	f.StringVar(&opts.Name, "name", "external", "name of the --kubeconfig server in the results")
	f.StringVar(&opts.StoreLabel, "store-label", "", "what the --kubeconfig server stores into, for the results (e.g. \"etcd 3.4, tmpfs\")")
	f.StringVar(&opts.DataRoot, "data-root", DefaultBenchDataRoot, "directory for the started servers' data dirs (tmpfs by default; a disk directory measures fsync too)")
	f.StringVar(&opts.JSON, "json", "", "also write the results to this JSON file")
	f.StringSliceVar(&opts.FromJSON, "from-json", nil, "print the results of earlier --json files side by side instead of running (comma-separated)")
	f.StringVar(&opts.CPUProfile, "cpuprofile", "", "write a CPU profile of the run (server and clients) to this file")
	f.IntVar(&c.Pods, "pods", apiserverbench.DefaultPods, "pods to create, then list")
	f.IntVar(&c.Clients, "clients", apiserverbench.DefaultClients, "concurrent clients creating pods, each with its own connection")
	f.IntVar(&c.Watchers, "watchers", apiserverbench.DefaultWatchers, "concurrent watches receiving each event")
	f.IntVar(&c.WatchEvents, "watch-events", apiserverbench.DefaultWatchEvents, "writes whose delivery to the watchers is timed")
	f.IntVar(&c.Lists, "lists", apiserverbench.DefaultLists, "timed LISTs of all pods, whole and paged each")
	f.Int64Var(&c.PageSize, "page-size", apiserverbench.DefaultPageSize, "limit of the paged LIST")
	f.Float32Var(&c.QPS, "qps", apiserverbench.DefaultQPS, "client-go QPS limit of each client")
	f.IntVar(&c.Burst, "burst", apiserverbench.DefaultBurst, "client-go burst of each client")
	return cmd
}
