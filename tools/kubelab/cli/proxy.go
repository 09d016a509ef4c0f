package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubelab/kubelab/reference/proxy"
	"github.com/kubelab/kubelab/spec"
)

// ProxyOptions are the settings of `kubelab proxy`.
type ProxyOptions struct {
	// Kubeconfig reaches the API server ("": $KUBECONFIG or ~/.kube/config).
	Kubeconfig string
	// NodeName is the node to program.
	NodeName string
	// Proxy is the registered proxy plugin to use; Options its key=value
	// settings.
	Proxy   string
	Options []string
	// NodeIPs are the NodePort addresses (default: the Node's InternalIP
	// and ExternalIP addresses).
	NodeIPs []string
	// MinSyncPeriod and SyncPeriod as reference/proxy.Config.
	MinSyncPeriod, SyncPeriod time.Duration
	// HealthzAddress and MetricsAddress serve /healthz and /metrics (both
	// paths on each; empty: none).
	HealthzAddress, MetricsAddress string
	// Cleanup removes what the plugin installed and exits.
	Cleanup bool
	// Verbose logs at debug level.
	Verbose bool
}

// RunProxy runs kubelab's proxy loop with opts until ctx ends.
func RunProxy(ctx context.Context, reg *spec.Registry, opts ProxyOptions, out io.Writer) error {
	level := slog.LevelInfo
	if opts.Verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
	if opts.NodeName == "" {
		return fmt.Errorf("--node-name is required")
	}
	plugin, err := reg.Proxy(opts.Proxy)
	if err != nil {
		return err
	}
	popts := map[string]string{}
	for _, kv := range opts.Options {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("--proxy-option %q is not key=value", kv)
		}
		popts[k] = v
	}
	var nodeIPs []netip.Addr
	for _, s := range opts.NodeIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("--node-ip: %w", err)
		}
		nodeIPs = append(nodeIPs, a)
	}
	p, err := plugin.New(ctx, spec.ProxyConfig{NodeName: opts.NodeName, Options: popts, Logger: log})
	if err != nil {
		return err
	}
	if opts.Cleanup {
		if err := p.Cleanup(ctx); err != nil {
			return err
		}
		fprintf(out, "kubelab proxy: %s cleaned up on node %s\n", opts.Proxy, opts.NodeName)
		return nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = opts.Kubeconfig
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	rc.UserAgent = "kubelab-proxy"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	r, err := proxy.New(proxy.Config{Client: client, NodeName: opts.NodeName, NodeAddresses: nodeIPs, Proxy: p,
		MinSyncPeriod: opts.MinSyncPeriod, SyncPeriod: opts.SyncPeriod, Logger: log})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serveErr := make(chan error, 2)
	var served []string
	for _, addr := range uniqueNonEmpty(opts.HealthzAddress, opts.MetricsAddress) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		served = append(served, ln.Addr().String())
		go func() { serveErr <- r.Serve(ctx, ln) }()
	}
	fprintf(out, "kubelab proxy: node %s, plugin %s, API %s, /healthz and /metrics on %v\n", opts.NodeName, opts.Proxy, rc.Host, served)
	err = r.Run(ctx)
	cancel()
	for range served {
		if serr := <-serveErr; err == nil {
			err = serr
		}
	}
	return err
}

func uniqueNonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func newProxyCommand(reg *spec.Registry) *cobra.Command {
	opts := ProxyOptions{}
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run kubelab's service proxy (kube-proxy) for one node",
		Long: `Run kubelab's service proxy (reference/proxy) for one node against any API
server: it watches Services and EndpointSlices and programs the node's data
plane through a proxy plugin (--proxy nftables or userspace, or any plugin in
the registry), batching changes as kube-proxy does (--min-sync-period) and
resyncing every --sync-period. Run it in the node's network namespace.

Stopping it leaves the rules in place (traffic keeps flowing until the next
proxy takes over); --cleanup removes them and exits.

  kubelab proxy --kubeconfig /tmp/kl/proxy.kubeconfig --node-name node-1 --proxy nftables`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return RunProxy(cmd.Context(), reg, opts, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Kubeconfig, "kubeconfig", "", "kubeconfig of the API server (default: $KUBECONFIG, ~/.kube/config)")
	f.StringVar(&opts.NodeName, "node-name", "", "the node this proxy programs (required)")
	f.StringVar(&opts.Proxy, "proxy", "nftables", "proxy plugin (see kubelab plugins)")
	f.StringArrayVar(&opts.Options, "proxy-option", nil, "plugin option key=value (repeatable), e.g. table-suffix=c1-n1")
	f.StringArrayVar(&opts.NodeIPs, "node-ip", nil, "address NodePorts open on (repeatable; default: the Node's InternalIP/ExternalIP)")
	f.DurationVar(&opts.MinSyncPeriod, "min-sync-period", proxy.DefaultMinSyncPeriod, "shortest time between two syncs")
	f.DurationVar(&opts.SyncPeriod, "sync-period", proxy.DefaultSyncPeriod, "longest time between two syncs")
	f.StringVar(&opts.HealthzAddress, "healthz-bind-address", "127.0.0.1:10256", "address for /healthz (empty: none)")
	f.StringVar(&opts.MetricsAddress, "metrics-bind-address", "127.0.0.1:10249", "address for /metrics (empty: none)")
	f.BoolVar(&opts.Cleanup, "cleanup", false, "remove everything the plugin installed on this node and exit")
	f.BoolVarP(&opts.Verbose, "verbose", "v", false, "log at debug level")
	return cmd
}
