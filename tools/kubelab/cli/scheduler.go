package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubelab/kubelab/plugins/scheduler/profiles"
	"github.com/kubelab/kubelab/reference/scheduler"
	"github.com/kubelab/kubelab/spec"
)

// SchedulerOptions are the settings of `kubelab scheduler`.
type SchedulerOptions struct {
	// Kubeconfig is the kubeconfig to reach the API server with ("":
	// $KUBECONFIG or ~/.kube/config, or in-cluster).
	Kubeconfig string
	// Config is a scheduler configuration file (scheduler.FileConfig).
	Config string
	// Profiles are built-in profiles to run (when Config is empty;
	// default: default-scheduler).
	Profiles []string
	// SchedulerName renames the profile when exactly one runs.
	SchedulerName string
	// LeaderElect turns leader election on; LeaseName names its Lease in
	// kube-system.
	LeaderElect bool
	LeaseName   string
	// Listen serves /metrics, /healthz and /explain over plain HTTP.
	Listen string
	// Explain records explanations; ExplainAnnotation also writes them to
	// the pod annotation.
	Explain, ExplainAnnotation bool
	// QPS and Burst are the API client's rate limits.
	QPS   float32
	Burst int
	// PercentageOfNodesToScore overrides the config's when not 0.
	PercentageOfNodesToScore int32
	// Verbose logs at debug level.
	Verbose bool
}

// profileLookup finds a profile by scheduler name: a profile registered in
// reg (spec.Registry.RegisterProfile: kubelab's built-ins through
// plugins/builtin, a third party's own), else one of kubelab's built-in
// profiles (for a registry that did not register them).
func profileLookup(reg *spec.Registry) func(string) (spec.Profile, bool) {
	return func(name string) (spec.Profile, bool) {
		if reg != nil {
			if p, err := reg.Profile(name); err == nil {
				return p, true
			}
		}
		return builtinProfile(name)
	}
}

// knownProfileNames lists every profile profileLookup(reg) finds, sorted.
func knownProfileNames(reg *spec.Registry) []string {
	seen := map[string]bool{}
	var out []string
	if reg != nil {
		for _, n := range reg.ProfileNames() {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, n := range builtinProfileNames() {
		if !seen[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// builtinProfile looks up a built-in profile by scheduler name.
func builtinProfile(name string) (spec.Profile, bool) {
	for _, p := range profiles.All() {
		if p.SchedulerName == name {
			return p, true
		}
	}
	return spec.Profile{}, false
}

func builtinProfileNames() []string {
	var out []string
	for _, p := range profiles.All() {
		out = append(out, p.SchedulerName)
	}
	sort.Strings(out)
	return out
}

// schedulerRegistry returns reg with kubelab's scheduler plugins added
// when reg has none of them (plugins/builtin may or may not list them).
func schedulerRegistry(reg *spec.Registry) *spec.Registry {
	if reg == nil {
		reg = spec.NewRegistry()
	}
	have := map[string]bool{}
	for _, n := range reg.SchedulerNames() {
		have[n] = true
	}
	for _, p := range profiles.Plugins() {
		if !have[p.Name] {
			_ = reg.RegisterScheduler(p)
		}
	}
	return reg
}

// BuildSchedulerConfig turns opts into a scheduler.Config (without the
// client).
func BuildSchedulerConfig(reg *spec.Registry, opts SchedulerOptions, log *slog.Logger) (scheduler.Config, error) {
	cfg := scheduler.Config{
		Registry:          schedulerRegistry(reg),
		ListenAddress:     opts.Listen,
		Explain:           opts.Explain || opts.ExplainAnnotation,
		ExplainAnnotation: opts.ExplainAnnotation,
		Logger:            log,
		LeaderElection:    scheduler.LeaderElection{Enabled: opts.LeaderElect, LeaseName: opts.LeaseName},
	}
	switch {
	case opts.Config != "":
		if len(opts.Profiles) > 0 {
			return cfg, fmt.Errorf("--profile and --config are exclusive: list the profiles in the config file")
		}
		fc, err := scheduler.LoadFileConfig(opts.Config)
		if err != nil {
			return cfg, err
		}
		fc.Apply(&cfg)
		if cfg.Profiles, err = fc.ResolveProfiles(profileLookup(reg)); err != nil {
			return cfg, err
		}
	default:
		names := opts.Profiles
		if len(names) == 0 {
			names = []string{profiles.DefaultSchedulerName}
		}
		for _, n := range names {
			p, ok := profileLookup(reg)(n)
			if !ok {
				return cfg, fmt.Errorf("unknown profile %q (registered: %s): %w", n, strings.Join(knownProfileNames(reg), ", "), spec.ErrNotFound)
			}
			cfg.Profiles = append(cfg.Profiles, p)
		}
	}
	if opts.SchedulerName != "" {
		if len(cfg.Profiles) != 1 {
			return cfg, fmt.Errorf("--scheduler-name renames one profile, but %d run", len(cfg.Profiles))
		}
		cfg.Profiles[0].SchedulerName = opts.SchedulerName
	}
	if opts.PercentageOfNodesToScore != 0 {
		cfg.PercentageOfNodesToScore = opts.PercentageOfNodesToScore
	}
	return cfg, nil
}

// RunScheduler runs kubelab's scheduler with opts until ctx ends.
func RunScheduler(ctx context.Context, reg *spec.Registry, opts SchedulerOptions, out io.Writer) error {
	level := slog.LevelInfo
	if opts.Verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
	cfg, err := BuildSchedulerConfig(reg, opts, log)
	if err != nil {
		return err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = opts.Kubeconfig
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	rc.QPS, rc.Burst = opts.QPS, opts.Burst
	rc.UserAgent = "kubelab-scheduler"
	cfg.RestConfig = rc
	s, err := scheduler.New(cfg)
	if err != nil {
		return err
	}
	var names []string
	for _, p := range cfg.Profiles {
		names = append(names, p.SchedulerName)
	}
	fprintf(out, "kubelab scheduler: profiles %s, API %s", strings.Join(names, ", "), rc.Host)
	if a := s.Addr(); a != "" {
		fprintf(out, ", metrics/explain on http://%s", a)
	}
	fprintf(out, "\n")
	return s.Run(ctx)
}

func newSchedulerCommand(reg *spec.Registry) *cobra.Command {
	opts := SchedulerOptions{}
	cmd := &cobra.Command{
		Use:   "scheduler",
		Short: "Run kubelab's scheduler against an API server",
		Long: `Run kubelab's scheduler (reference/scheduler) against any API server:
kubelab's own or a real kube-apiserver. It schedules the pods whose
spec.schedulerName matches one of its profiles, binding them through
pods/binding, and reports failures as the kube-scheduler does (a
PodScheduled=False condition and a FailedScheduling event).

Profiles come from --profile (built-in: default-scheduler, binpack-scheduler,
spread-scheduler, random-scheduler, firstfit-scheduler; repeat the flag to
run several) or from --config FILE (YAML: profiles with plugins, weights and
args, percentageOfNodesToScore, extenders; see
reference/scheduler/testdata/config.yaml).

--listen serves Prometheus metrics on /metrics (the kube-scheduler's metric
names), /healthz, and with --explain the per-node verdicts and per-plugin
scores of each pod's last attempt on /explain/NAMESPACE/NAME (read them with
kubelab explain pod NAME). The endpoint is plain HTTP: bind it to loopback.

Against kubelab apiserver with a data dir, use the scheduler's kubeconfig
(system:kube-scheduler, bootstrap RBAC):

  kubelab apiserver --data-dir /tmp/kl &
  kubelab scheduler --kubeconfig /tmp/kl/scheduler.kubeconfig --explain`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return RunScheduler(cmd.Context(), reg, opts, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Kubeconfig, "kubeconfig", "", "kubeconfig of the API server (default: $KUBECONFIG, ~/.kube/config)")
	f.StringVar(&opts.Config, "config", "", "scheduler configuration file (YAML; see reference/scheduler/testdata/config.yaml)")
	f.StringArrayVar(&opts.Profiles, "profile", nil, "registered profile to run (repeatable; default default-scheduler): "+strings.Join(knownProfileNames(reg), ", "))
	f.StringVar(&opts.SchedulerName, "scheduler-name", "", "serve the (single) profile under this schedulerName")
	f.BoolVar(&opts.LeaderElect, "leader-elect", true, "elect a leader among replicas through a Lease in kube-system (as kube-scheduler)")
	f.StringVar(&opts.LeaseName, "lease-name", scheduler.DefaultLeaseName, "name of the leader election Lease in kube-system (replicas of one scheduler share it; a second scheduler with other profiles needs another name — and RBAC for it: system:kube-scheduler may only update kube-scheduler — or --leader-elect=false)")
	f.StringVar(&opts.Listen, "listen", "127.0.0.1:10259", "plain-HTTP address for /metrics, /healthz and /explain (empty: none)")
	f.BoolVar(&opts.Explain, "explain", false, "record why each pod went where it went (served on /explain/NAMESPACE/NAME)")
	f.BoolVar(&opts.ExplainAnnotation, "explain-annotation", false, "also write the explanation to the pod annotation "+scheduler.ExplanationAnnotation+" (bounded to 32 KiB; implies --explain)")
	f.Float32Var(&opts.QPS, "kube-api-qps", 500, "API client QPS (kube-scheduler's default is 50; higher keeps up with thousands of pods)")
	f.IntVar(&opts.Burst, "kube-api-burst", 1000, "API client burst (kube-scheduler's default is 100)")
	f.Int32Var(&opts.PercentageOfNodesToScore, "percentage-of-nodes-to-score", 0, "percentage of nodes to look for feasible ones in (0: the config's, or adaptive)")
	f.BoolVarP(&opts.Verbose, "verbose", "v", false, "log at debug level")
	return cmd
}
