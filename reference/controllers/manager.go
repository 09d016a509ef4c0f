package controllers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"

	"github.com/kubelab/kubelab/reference/controllers/controller"
)

// Runner is a built controller: Run starts its workers and blocks until
// ctx ends. The manager starts the shared informers and waits for their
// caches before it calls Run.
type Runner interface {
	Run(ctx context.Context)
}

// Initializer names a controller and builds it. New registers the
// informers the controller needs on c.Informers (before they start).
type Initializer struct {
	// Name is upstream's canonical controller name (e.g.
	// "replicaset-controller").
	Name string
	// Aliases are other names --controllers accepts for it (upstream's
	// older names, e.g. "replicaset").
	Aliases []string
	// Component is the source component of its Events (upstream's, e.g.
	// "replicaset-controller"; default Name).
	Component string
	// DisabledByDefault keeps the controller off under "*".
	DisabledByDefault bool
	// New builds the controller.
	New func(c controller.Context) (Runner, error)
}

// LeaderElection configures leader election on a Lease.
type LeaderElection struct {
	// Enabled turns it on (the CLI's default, as upstream's --leader-elect).
	Enabled bool
	// LeaseNamespace and LeaseName name the Lease (default
	// kube-system/kube-controller-manager).
	LeaseNamespace, LeaseName string
	// Identity is this replica's holder identity (default hostname_uuid).
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod default to upstream's
	// 15 s, 10 s and 2 s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Config configures a Manager.
type Config struct {
	// Client talks to the API server (required).
	Client kubernetes.Interface
	// Dynamic talks to the API server about any resource (the namespace
	// controller empties namespaces of every kind discovery lists). Nil
	// derives one from Client's (its HTTP client and server; JSON, 100
	// qps / 200 burst); nil still when Client is not a REST clientset.
	Dynamic dynamic.Interface
	// Controllers selects controllers as upstream's --controllers: "*"
	// (every controller not disabled by default), "foo" (enable foo),
	// "-foo" (disable foo); the first entry naming a controller wins.
	// Empty means ["*"]. Unknown names are an error.
	Controllers []string
	// LeaderElection configures leader election (off when not Enabled).
	LeaderElection LeaderElection
	// ListenAddress, when set, serves /healthz, /readyz and /metrics over
	// plain HTTP ("127.0.0.1:0" picks a port; see Addr).
	ListenAddress string
	// RootCA is the PEM bundle the root-ca-cert-publisher publishes.
	RootCA []byte
	// Logger logs (default slog.Default()).
	Logger *slog.Logger
	// Initializers replaces the built-in controller list (tests); nil
	// means Builtin().
	Initializers []Initializer
}

// Manager runs the selected controllers over one shared informer factory,
// behind leader election. Build it with New, run it once with Run.
type Manager struct {
	cfg      Config
	log      *slog.Logger
	enabled  []Initializer
	registry *prometheus.Registry
	queues   *queueMetrics
	listener net.Listener
	leading  chan struct{}
	leadOnce sync.Once
}

// New validates cfg, resolves the controller selection and opens the HTTP
// listener (when ListenAddress is set).
func New(cfg Config) (*Manager, error) {
	if cfg.Client == nil {
		return nil, errors.New("controllers: Config.Client is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Dynamic == nil {
		cfg.Dynamic = dynamicFrom(cfg.Client)
	}
	if cfg.Initializers == nil {
		cfg.Initializers = Builtin()
	}
	if len(cfg.Controllers) == 0 {
		cfg.Controllers = []string{"*"}
	}
	enabled, err := Select(cfg.Initializers, cfg.Controllers)
	if err != nil {
		return nil, err
	}
	le := &cfg.LeaderElection
	if le.LeaseNamespace == "" {
		le.LeaseNamespace = "kube-system"
	}
	if le.LeaseName == "" {
		le.LeaseName = "kube-controller-manager"
	}
	if le.Identity == "" {
		host, _ := os.Hostname()
		le.Identity = host + "_" + uuid.NewString()
	}
	if le.LeaseDuration == 0 {
		le.LeaseDuration = 15 * time.Second
	}
	if le.RenewDeadline == 0 {
		le.RenewDeadline = 10 * time.Second
	}
	if le.RetryPeriod == 0 {
		le.RetryPeriod = 2 * time.Second
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, enabled: enabled, registry: prometheus.NewRegistry(), leading: make(chan struct{})}
	m.queues = newQueueMetrics(m.registry)
	if cfg.ListenAddress != "" {
		if m.listener, err = net.Listen("tcp", cfg.ListenAddress); err != nil {
			return nil, fmt.Errorf("controllers: listen: %w", err)
		}
	}
	return m, nil
}

// Select returns the initializers that selection enables, in the order of
// all, as upstream's IsControllerEnabled: an entry "foo" or "-foo" decides
// foo (the first one wins); otherwise "*" enables foo unless it is disabled
// by default; without "*" it is off. An entry may name a controller by its
// name or one of its aliases; one naming no known controller is an error.
func Select(all []Initializer, selection []string) ([]Initializer, error) {
	canonical := map[string]string{}
	for _, in := range all {
		canonical[in.Name] = in.Name
		for _, a := range in.Aliases {
			canonical[a] = in.Name
		}
	}
	star := false
	decided := map[string]bool{} // canonical name → enabled, first entry wins
	for _, s := range selection {
		if s == "*" {
			star = true
			continue
		}
		name, ok := canonical[strings.TrimPrefix(s, "-")]
		if !ok {
			names := make([]string, 0, len(canonical))
			for n := range canonical {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("controllers: %q is not a known controller (known: %s)", s, strings.Join(names, ", "))
		}
		if _, seen := decided[name]; !seen {
			decided[name] = !strings.HasPrefix(s, "-")
		}
	}
	var out []Initializer
	for _, in := range all {
		on, ok := decided[in.Name]
		if !ok {
			on = star && !in.DisabledByDefault
		}
		if on {
			out = append(out, in)
		}
	}
	return out, nil
}

// Enabled returns the names of the controllers this manager runs.
func (m *Manager) Enabled() []string {
	var out []string
	for _, in := range m.enabled {
		out = append(out, in.Name)
	}
	return out
}

// Addr is the HTTP listener's address ("" without ListenAddress).
func (m *Manager) Addr() string {
	if m.listener == nil {
		return ""
	}
	return m.listener.Addr().String()
}

// Leading is closed once this replica leads (at once without leader
// election) and its controllers run.
func (m *Manager) Leading() <-chan struct{} { return m.leading }

// Handler serves /healthz and /readyz ("ok") and /metrics (the
// workqueue_* series of every controller's queue, Go and process
// collectors).
func (m *Manager) Handler() http.Handler {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/readyz", ok)
	mux.Handle("/metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	return mux
}

// Run serves HTTP, then (after winning the leader election, when enabled)
// builds the enabled controllers over one shared informer factory, starts
// it, waits for its caches and runs the controllers until ctx ends. It
// returns nil when ctx ends and an error when the caches do not sync, a
// controller cannot be built, or the leadership is lost (the process
// should then exit, as upstream's does, and be restarted).
func (m *Manager) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	if m.listener != nil {
		srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(m.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				m.log.Error("controller-manager HTTP server", "err", err)
			}
		}()
		defer func() {
			sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
			_ = srv.Shutdown(sctx)
			c()
		}()
	}
	le := m.cfg.LeaderElection
	if !le.Enabled {
		return m.runControllers(ctx)
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, le.LeaseNamespace, le.LeaseName,
		m.cfg.Client.CoreV1(), m.cfg.Client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: le.Identity})
	if err != nil {
		return fmt.Errorf("controllers: leader election lock: %w", err)
	}
	var (
		runErr  error
		running sync.WaitGroup
		lost    = make(chan struct{})
	)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: le.LeaseDuration, RenewDeadline: le.RenewDeadline, RetryPeriod: le.RetryPeriod,
		ReleaseOnCancel: true, Name: le.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				running.Add(1)
				defer running.Done()
				m.log.Info("leading", "lease", le.LeaseNamespace+"/"+le.LeaseName, "identity", le.Identity)
				if err := m.runControllers(lctx); err != nil {
					runErr = err
					cancel()
				}
			},
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					close(lost)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("controllers: leader election: %w", err)
	}
	elector.Run(ctx)
	cancel()
	running.Wait()
	if runErr != nil {
		return runErr
	}
	select {
	case <-lost:
		return errors.New("controllers: leader election lost")
	default:
		return nil
	}
}

// runControllers builds, starts and runs the enabled controllers until ctx
// ends.
func (m *Manager) runControllers(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(m.cfg.Client, 0)
	defer factory.Shutdown()
	events := record.NewBroadcaster(record.WithContext(ctx))
	events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: m.cfg.Client.CoreV1().Events("")})
	defer events.Shutdown()
	var runners []Runner
	for _, in := range m.enabled {
		component := in.Component
		if component == "" {
			component = in.Name
		}
		r, err := in.New(controller.Context{Client: m.cfg.Client, Dynamic: m.cfg.Dynamic, Informers: factory,
			Logger: m.log.With("controller", in.Name), Metrics: m.queues, RootCA: m.cfg.RootCA,
			Recorder: events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})})
		if err != nil {
			return fmt.Errorf("controllers: build %s: %w", in.Name, err)
		}
		runners = append(runners, r)
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("controllers: informer cache for %v did not sync", typ)
		}
	}
	m.log.Info("controllers started", "controllers", strings.Join(m.Enabled(), ","))
	m.leadOnce.Do(func() { close(m.leading) })
	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Add(1)
		go func() { defer wg.Done(); r.Run(ctx) }()
	}
	wg.Wait()
	return nil
}

// dynamicFrom returns a dynamic client over cs's HTTP client and server,
// or nil when cs is not backed by a REST client (a fake).
func dynamicFrom(cs kubernetes.Interface) dynamic.Interface {
	rc, ok := cs.Discovery().RESTClient().(*rest.RESTClient)
	if !ok || rc == nil || rc.Client == nil {
		return nil
	}
	u := rc.Get().URL() // the server's base URL (discovery has no API path)
	d, err := dynamic.NewForConfigAndClient(&rest.Config{Host: u.Scheme + "://" + u.Host + u.Path, QPS: 100, Burst: 200}, rc.Client)
	if err != nil {
		return nil
	}
	return d
}
