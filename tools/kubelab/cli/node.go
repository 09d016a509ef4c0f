package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubelab/kubelab/reference/kubelet"
	"github.com/kubelab/kubelab/spec"
)

// DefaultNodeRoot is where `kubelab node` keeps the kubelet's and the
// runtime's files.
const DefaultNodeRoot = "/var/lib/kubelab/node"

// NodeOptions are the settings of `kubelab node`.
type NodeOptions struct {
	// Kubeconfig reaches the API server ("": $KUBECONFIG or
	// ~/.kube/config, or in-cluster).
	Kubeconfig string
	// NodeName is the Node's name; the host name when empty.
	NodeName string
	// Runtime is "NAME" (a registered runtime plugin: process, hollow) or
	// "cri=ENDPOINT" (any CRI runtime over its socket).
	Runtime string
	// RuntimeOptions are the plugin's key=value options.
	RuntimeOptions []string
	// Root is the node's directory: the kubelet's files in Root/kubelet,
	// a plugin runtime's in Root/runtime.
	Root string
	// InternalIP is the node's InternalIP address.
	InternalIP string
	// PodCIDR is the node's pod range (also the process and hollow
	// runtimes' pod-cidr unless given as a runtime option).
	PodCIDR string
	// CPU, Memory and MaxPods override the machine's capacity.
	CPU, Memory string
	MaxPods     int
	// ClusterDNS and ClusterDomain configure dnsPolicy ClusterFirst.
	ClusterDNS    []string
	ClusterDomain string
	// CgroupParent is the parent cgroup of pod sandboxes.
	CgroupParent string
	// PodManifestPath is a directory of static pod manifests.
	PodManifestPath string
	// Address and Port are where the kubelet API listens (Port 0: not
	// served); TLSCertFile and TLSPrivateKeyFile its certificate
	// (default self-signed); ClientCAFile verifies client certificates.
	Address                        string
	Port                           int
	TLSCertFile, TLSPrivateKeyFile string
	ClientCAFile                   string
	// Verbose logs at debug level.
	Verbose bool
	// Count, when above 1, runs that many kubelets in this process, named
	// NodeName-0 ... (hollow nodes, as kubemark's); each gets its own
	// runtime instance and directory Root/NAME, and they share one
	// API client and one services informer.
	Count int
	// Backoff is the crash-loop back-off (zero fields: upstream's 10 s
	// doubling to 5 min); --crashloop-backoff-initial and
	// --crashloop-backoff-max shorten it for tests, as upstream's
	// crashLoopBackOff.maxContainerRestartPeriod does its cap.
	Backoff kubelet.BackoffPolicy
}

// ParseNodeRuntime turns --runtime and --runtime-option into a registered
// plugin and its config: "cri=ENDPOINT" is the "cri" plugin with that
// endpoint; any other value names a plugin in reg.
func ParseNodeRuntime(reg *spec.Registry, opts NodeOptions) (spec.RuntimePlugin, spec.RuntimeConfig, error) {
	cfg := spec.RuntimeConfig{RootDir: filepath.Join(opts.Root, "runtime"), Options: map[string]string{}}
	for _, o := range opts.RuntimeOptions {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return spec.RuntimePlugin{}, cfg, fmt.Errorf("--runtime-option %q: want key=value: %w", o, spec.ErrInvalid)
		}
		cfg.Options[k] = v
	}
	name := opts.Runtime
	if ep, ok := strings.CutPrefix(opts.Runtime, "cri="); ok {
		name, cfg.Endpoint = "cri", ep
	} else if opts.PodCIDR != "" && (name == "process" || name == "hollow") {
		if _, set := cfg.Options["pod-cidr"]; !set {
			cfg.Options["pod-cidr"] = opts.PodCIDR
		}
	}
	p, err := reg.Runtime(name)
	if err != nil {
		return p, cfg, fmt.Errorf("--runtime %q: %w", opts.Runtime, err)
	}
	return p, cfg, nil
}

// NodeKubeletConfig builds the kubelet's config from opts (without client
// and runtime).
func NodeKubeletConfig(opts NodeOptions, log *slog.Logger) (kubelet.Config, error) {
	name := opts.NodeName
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return kubelet.Config{}, err
		}
		name = strings.ToLower(h)
	}
	cfg := kubelet.Config{
		NodeName: name, RootDir: filepath.Join(opts.Root, "kubelet"), InternalIP: opts.InternalIP, PodCIDR: opts.PodCIDR,
		MaxPods: opts.MaxPods, KubeletVersion: kubeletVersion(), ClusterDNS: opts.ClusterDNS, ClusterDomain: opts.ClusterDomain,
		CgroupParent: opts.CgroupParent, StaticPodPath: opts.PodManifestPath, Backoff: opts.Backoff, Logger: log,
	}
	if opts.Port != 0 {
		cfg.APIAddr = net.JoinHostPort(opts.Address, strconv.Itoa(opts.Port))
		if opts.TLSCertFile != "" || opts.TLSPrivateKeyFile != "" {
			c, err := tls.LoadX509KeyPair(opts.TLSCertFile, opts.TLSPrivateKeyFile)
			if err != nil {
				return cfg, fmt.Errorf("--tls-cert-file/--tls-private-key-file: %w", err)
			}
			cfg.APICert = &c
		}
		if opts.ClientCAFile != "" {
			pem, err := os.ReadFile(opts.ClientCAFile)
			if err != nil {
				return cfg, err
			}
			cfg.APIClientCAs = x509.NewCertPool()
			if !cfg.APIClientCAs.AppendCertsFromPEM(pem) {
				return cfg, fmt.Errorf("--client-ca-file %s: no PEM certificates: %w", opts.ClientCAFile, spec.ErrInvalid)
			}
		}
	}
	if opts.CPU != "" || opts.Memory != "" {
		maxPods := opts.MaxPods
		if maxPods <= 0 {
			maxPods = kubelet.DefaultMaxPods
		}
		capacity, err := kubelet.MachineCapacity(cfg.RootDir, maxPods)
		if err != nil {
			return cfg, err
		}
		for res, v := range map[corev1.ResourceName]string{corev1.ResourceCPU: opts.CPU, corev1.ResourceMemory: opts.Memory} {
			if v == "" {
				continue
			}
			q, err := resource.ParseQuantity(v)
			if err != nil {
				return cfg, fmt.Errorf("--%s %q: %w", res, v, spec.ErrInvalid)
			}
			capacity[res] = q
		}
		cfg.Capacity = capacity
	}
	return cfg, nil
}

// kubeletVersion is the version the Node reports: the API version kubelab
// follows, marked as kubelab's.
func kubeletVersion() string { return "v1.37.2-kubelab" }

// RunNode runs a kubelet as opts say until ctx ends, over rt and the API
// server at rc.
func RunNode(ctx context.Context, opts NodeOptions, rc *rest.Config, rt spec.Runtime, log *slog.Logger) error {
	client, err := nodeClient(rc, opts.NodeName, 1)
	if err != nil {
		return err
	}
	return runKubelet(ctx, opts, client, rt, nil, log)
}

func nodeClient(rc *rest.Config, name string, nodes int) (kubernetes.Interface, error) {
	rc = rest.CopyConfig(rc)
	rc.UserAgent = "kubelab-node/" + name
	if rc.QPS == 0 {
		// upstream kubelet's kubeAPIQPS / kubeAPIBurst, per node
		rc.QPS, rc.Burst = float32(50*nodes), 100*nodes
	}
	return kubernetes.NewForConfig(rc)
}

func runKubelet(ctx context.Context, opts NodeOptions, client kubernetes.Interface, rt spec.Runtime, services coreinformers.ServiceInformer, log *slog.Logger) error {
	cfg, err := NodeKubeletConfig(opts, log)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.RootDir, 0o755); err != nil {
		return err
	}
	cfg.Client, cfg.Runtime, cfg.Services = client, rt, services
	k, err := kubelet.New(cfg)
	if err != nil {
		return err
	}
	return k.Run(ctx)
}

// RunHollowNodes runs opts.Count kubelets in this process, each over a
// fresh runtime from p (with cfg, its RootDir under the node's own
// directory), sharing one client and one services informer, until ctx
// ends; it returns the first error of any.
func RunHollowNodes(ctx context.Context, opts NodeOptions, rc *rest.Config, p spec.RuntimePlugin, rcfg spec.RuntimeConfig, log *slog.Logger) error {
	client, err := nodeClient(rc, opts.NodeName, opts.Count)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	services := factory.Core().V1().Services()
	services.Informer()
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, opts.Count)
	for i := range opts.Count {
		o := opts
		o.NodeName = fmt.Sprintf("%s-%d", opts.NodeName, i)
		o.Root = filepath.Join(opts.Root, o.NodeName)
		o.Port = 0 // one port cannot serve them all
		c := rcfg
		c.RootDir = filepath.Join(o.Root, "runtime")
		if err := os.MkdirAll(c.RootDir, 0o755); err != nil {
			return err
		}
		rt, closer, err := p.New(ctx, c)
		if err != nil {
			return fmt.Errorf("node %s: runtime: %w", o.NodeName, err)
		}
		go func() {
			defer func() { _ = closer() }()
			errc <- runKubelet(ctx, o, client, rt, services, log.With("node", o.NodeName))
		}()
	}
	var first error
	for range opts.Count {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

func newNodeCommand(reg *spec.Registry) *cobra.Command {
	opts := NodeOptions{Root: DefaultNodeRoot}
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a kubelet: register a Node and run the pods bound to it on a container runtime",
		Long: `node runs kubelab's kubelet (reference/kubelet): it registers the Node,
renews its Lease, posts its status, and runs the pods bound to it through a
container runtime reached only by CRI:

  kubelab node --kubeconfig admin.kubeconfig --node-name n1 --runtime process --root /var/lib/kubelab/n1
  kubelab node --runtime cri=unix:///run/containerd/containerd.sock ...
  kubelab node --runtime hollow ...     # runs nothing: containers "run" at once

With the process runtime, images come from its local store: import them with
kubelab runtime import --image-dir ROOT/runtime/images FILE.tar.
Stopping the command leaves the pods' containers running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if opts.Verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			return runNodeCommand(cmd.Context(), reg, opts, cmd.OutOrStdout(), log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Kubeconfig, "kubeconfig", "", "kubeconfig of the API server (default: $KUBECONFIG, ~/.kube/config or in-cluster)")
	f.StringVar(&opts.NodeName, "node-name", "", "the Node's name (default: the host name)")
	f.StringVar(&opts.Runtime, "runtime", "process", "container runtime: a registered plugin (process, hollow) or cri=unix:///PATH")
	f.StringArrayVar(&opts.RuntimeOptions, "runtime-option", nil, "runtime plugin option key=value; repeatable")
	f.StringVar(&opts.Root, "root", DefaultNodeRoot, "directory for the kubelet's and the runtime's files")
	f.StringVar(&opts.InternalIP, "node-ip", "", "the node's InternalIP (also the pods' hostIP)")
	f.StringVar(&opts.PodCIDR, "pod-cidr", "", "the node's pod range, e.g. 10.244.1.0/24")
	f.StringVar(&opts.CPU, "cpu", "", "CPU capacity (default: the machine's CPUs)")
	f.StringVar(&opts.Memory, "memory", "", "memory capacity (default: MemTotal of /proc/meminfo)")
	f.IntVar(&opts.MaxPods, "max-pods", kubelet.DefaultMaxPods, "pods capacity")
	f.StringSliceVar(&opts.ClusterDNS, "cluster-dns", nil, "cluster DNS server addresses for dnsPolicy ClusterFirst")
	f.StringVar(&opts.ClusterDomain, "cluster-domain", "cluster.local", "the cluster's DNS domain")
	f.StringVar(&opts.CgroupParent, "cgroup-parent", "", "parent cgroup of the pod sandboxes (the runtime's default when empty)")
	f.StringVar(&opts.PodManifestPath, "pod-manifest-path", "", "directory of static pod manifests (*.yaml, *.yml, *.json), shown in the API as mirror pods")
	f.StringVar(&opts.Address, "address", "0.0.0.0", "address the kubelet API listens on")
	f.IntVar(&opts.Port, "port", kubelet.DefaultKubeletPort, "HTTPS port of the kubelet API (0: not served)")
	f.StringVar(&opts.TLSCertFile, "tls-cert-file", "", "serving certificate of the kubelet API (default: self-signed)")
	f.StringVar(&opts.TLSPrivateKeyFile, "tls-private-key-file", "", "its key")
	f.StringVar(&opts.ClientCAFile, "client-ca-file", "", "CA bundle that verifies client certificates of the kubelet API")
	f.IntVar(&opts.Count, "count", 1, "run this many kubelets in this process, NODE-NAME-0..N-1, each with its own runtime instance (hollow nodes)")
	f.DurationVar(&opts.Backoff.Initial, "crashloop-backoff-initial", 0, "first crash-loop back-off delay, doubled at each restart (0: upstream's 10s); for tests")
	f.DurationVar(&opts.Backoff.Max, "crashloop-backoff-max", 0, "cap of the crash-loop back-off (0: upstream's 5m); for tests")
	f.BoolVarP(&opts.Verbose, "verbose", "v", false, "log at debug level")
	return cmd
}

func runNodeCommand(ctx context.Context, reg *spec.Registry, opts NodeOptions, out io.Writer, log *slog.Logger) error {
	p, rcfg, err := ParseNodeRuntime(reg, opts)
	if err != nil {
		return err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = opts.Kubeconfig
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if opts.Count > 1 {
		if opts.NodeName == "" {
			return fmt.Errorf("--count needs --node-name (the nodes are NAME-0, NAME-1, ...): %w", spec.ErrInvalid)
		}
		if rcfg.Endpoint != "" {
			return fmt.Errorf("--count runs a runtime instance per node; a CRI endpoint is one runtime: %w", spec.ErrInvalid)
		}
		fprintf(out, "kubelab node: %d nodes %s-0..%d on runtime %q (root %s)\n", opts.Count, opts.NodeName, opts.Count-1, opts.Runtime, opts.Root)
		return RunHollowNodes(ctx, opts, rc, p, rcfg, log)
	}
	if rcfg.Endpoint == "" {
		if err := os.MkdirAll(rcfg.RootDir, 0o755); err != nil {
			return err
		}
	}
	rt, closer, err := p.New(ctx, rcfg)
	if err != nil {
		return fmt.Errorf("runtime %q: %w", opts.Runtime, err)
	}
	defer func() { _ = closer() }()
	fprintf(out, "kubelab node %q on runtime %q (root %s)\n", opts.NodeName, opts.Runtime, opts.Root)
	err = RunNode(ctx, opts, rc, rt, log)
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = rt.Close(cctx)
	return err
}
