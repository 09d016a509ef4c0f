package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubelab/kubelab/reference/controllers"
)

// ControllerManagerOptions are the settings of `kubelab controller-manager`.
type ControllerManagerOptions struct {
	// Kubeconfig is the kubeconfig to reach the API server with ("":
	// $KUBECONFIG or ~/.kube/config).
	Kubeconfig string
	// Controllers selects controllers as upstream's --controllers.
	Controllers []string
	// LeaderElect turns leader election on (Lease
	// kube-system/kube-controller-manager).
	LeaderElect bool
	// Listen serves /healthz, /readyz and /metrics over plain HTTP.
	Listen string
	// RootCAFile is the CA bundle the root-ca-cert-publisher publishes
	// ("": the kubeconfig's CA).
	RootCAFile string
	// QPS and Burst are the API client's rate limits.
	QPS   float32
	Burst int
	// Verbose logs at debug level.
	Verbose bool
}

// RunControllerManager runs kubelab's controller manager with opts until
// ctx ends (or its leadership is lost).
func RunControllerManager(ctx context.Context, opts ControllerManagerOptions, out io.Writer) error {
	level := slog.LevelInfo
	if opts.Verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = opts.Kubeconfig
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	rc.QPS, rc.Burst = opts.QPS, opts.Burst
	rc.UserAgent = "kubelab-controller-manager"
	var ca []byte
	switch {
	case opts.RootCAFile != "":
		if ca, err = os.ReadFile(opts.RootCAFile); err != nil {
			return fmt.Errorf("--root-ca-file: %w", err)
		}
	case len(rc.CAData) > 0:
		ca = rc.CAData
	case rc.CAFile != "":
		if ca, err = os.ReadFile(rc.CAFile); err != nil {
			return fmt.Errorf("kubeconfig CA: %w", err)
		}
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return err
	}
	m, err := controllers.New(controllers.Config{Client: cs, Dynamic: dyn, Controllers: opts.Controllers, ListenAddress: opts.Listen,
		RootCA: ca, Logger: log, LeaderElection: controllers.LeaderElection{Enabled: opts.LeaderElect}})
	if err != nil {
		return err
	}
	fprintf(out, "kubelab controller-manager: controllers %s, API %s", strings.Join(m.Enabled(), ","), rc.Host)
	if a := m.Addr(); a != "" {
		fprintf(out, ", healthz/metrics on http://%s", a)
	}
	fprintf(out, "\n")
	return m.Run(ctx)
}

func newControllerManagerCommand() *cobra.Command {
	opts := ControllerManagerOptions{}
	var names []string
	for _, in := range controllers.Builtin() {
		n := in.Name
		if len(in.Aliases) > 0 {
			n += " (" + strings.Join(in.Aliases, ", ") + ")"
		}
		names = append(names, n)
	}
	cmd := &cobra.Command{
		Use:   "controller-manager",
		Short: "Run kubelab's controller manager against an API server",
		Long: `Run kubelab's controller manager (reference/controllers) against any API
server: kubelab's own or a real kube-apiserver. It runs the controllers that
--controllers selects, with upstream's names and syntax ("*" for every
controller on by default, "foo" to enable foo, "-foo" to disable it), after
winning the leader election on the Lease kube-system/kube-controller-manager
(--leader-elect, on by default as upstream).

Controllers (upstream's canonical names, with the older names also accepted):
` + strings.Join(names, ", ") + `.

--listen serves /healthz, /readyz and /metrics (client-go's workqueue_*
series) over plain HTTP: bind it to loopback.

Against kubelab apiserver with a data dir, use the controller manager's
kubeconfig (system:kube-controller-manager, bootstrap RBAC):

  kubelab apiserver --data-dir /tmp/kl &
  kubelab controller-manager --kubeconfig /tmp/kl/controller-manager.kubeconfig`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return RunControllerManager(cmd.Context(), opts, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Kubeconfig, "kubeconfig", "", "kubeconfig of the API server (default: $KUBECONFIG, ~/.kube/config)")
	f.StringSliceVar(&opts.Controllers, "controllers", []string{"*"}, "controllers to run: '*' (all on by default), 'foo', '-foo'; comma-separated (names: see above)")
	f.BoolVar(&opts.LeaderElect, "leader-elect", true, "elect a leader among replicas through the Lease kube-system/kube-controller-manager")
	f.StringVar(&opts.Listen, "listen", "127.0.0.1:10257", "plain-HTTP address for /healthz, /readyz and /metrics (empty: none)")
	f.StringVar(&opts.RootCAFile, "root-ca-file", "", "CA bundle published as kube-root-ca.crt in every namespace (default: the kubeconfig's CA)")
	f.Float32Var(&opts.QPS, "kube-api-qps", 100, "API client QPS (kube-controller-manager's default is 20)")
	f.IntVar(&opts.Burst, "kube-api-burst", 200, "API client burst (kube-controller-manager's default is 30)")
	f.BoolVarP(&opts.Verbose, "verbose", "v", false, "log at debug level")
	return cmd
}
