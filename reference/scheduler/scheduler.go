package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/framework"
)

// DefaultSchedulerName is the scheduler name pods get when they name none.
const DefaultSchedulerName = corev1.DefaultSchedulerName

// Defaults of Config.
const (
	DefaultPodInitialBackoff = time.Second
	DefaultPodMaxBackoff     = 10 * time.Second
	DefaultAssumedPodTTL     = 30 * time.Second
	DefaultLeaseName         = "kube-scheduler"
	DefaultLeaseNamespace    = "kube-system"
)

// LeaderElection configures leader election among replicas (a Lease, as
// the kube-scheduler's --leader-elect).
type LeaderElection struct {
	// Enabled turns it on.
	Enabled bool
	// LeaseNamespace and LeaseName name the Lease (default
	// kube-system/kube-scheduler, which the bootstrap role
	// system:kube-scheduler may update).
	LeaseNamespace, LeaseName string
	// Identity is this replica's holder identity (default hostname_uuid).
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod are client-go's
	// (defaults 15 s, 10 s, 2 s as the kube-scheduler's).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Config is what New builds a Scheduler from.
type Config struct {
	// Client talks to the API server; when nil it is built from RestConfig.
	Client kubernetes.Interface
	// RestConfig is used when Client is nil.
	RestConfig *rest.Config
	// Registry holds the scheduler policy plugins the profiles name.
	Registry *spec.Registry
	// Profiles are the scheduler names served and their plugins (at least
	// one; names must differ).
	Profiles []spec.Profile
	// Extenders are HTTP scheduler extenders, called for every profile.
	Extenders []ExtenderConfig
	// PercentageOfNodesToScore applies to profiles that set none (0: the
	// adaptive default, 50% - nodes/125, at least 5% and 100 nodes).
	PercentageOfNodesToScore int32
	// PodInitialBackoff and PodMaxBackoff bound the per-pod exponential
	// backoff (defaults 1 s and 10 s).
	PodInitialBackoff, PodMaxBackoff time.Duration
	// AssumedPodTTL is how long an assumed pod whose binding finished may
	// wait for the informer to confirm it (default 30 s).
	AssumedPodTTL time.Duration
	// Parallelism is the number of workers for Filter and Score (default
	// GOMAXPROCS).
	Parallelism int
	// LeaderElection configures leader election (off when not Enabled).
	LeaderElection LeaderElection
	// ListenAddress, when set, serves /metrics, /healthz and
	// /explain/NAMESPACE/NAME over plain HTTP (e.g. 127.0.0.1:10259).
	ListenAddress string
	// Explain records, for each pod, the per-node verdicts and per-plugin
	// scores of its last attempt.
	Explain bool
	// ExplainAnnotation also writes the explanation to the pod annotation
	// ExplanationAnnotation (bounded to 32 KiB). Needs Explain.
	ExplainAnnotation bool
	// Logger receives logs; nil means discard.
	Logger *slog.Logger
}

// Scheduler is kubelab's scheduler. Build it with New, start it with Run.
type Scheduler struct {
	cfg         Config
	log         *slog.Logger
	client      kubernetes.Interface
	profiles    map[string]*schedProfile
	queue       *schedulingQueue
	cache       *cache
	snap        *snapshot
	metrics     *metrics
	explained   explanations
	parallelism int
	listener    net.Listener

	factory   informers.SharedInformerFactory
	podLister corelisters.PodLister
	pdbLister policylisters.PodDisruptionBudgetLister
	pdbSynced toolscache.InformerSynced

	broadcaster events.EventBroadcaster
	recorders   map[string]events.EventRecorder

	// nextStartNodeIndex, rand and scratch are the scheduling cycle's
	// inputs carried from one cycle to the next; pdbs are the
	// PodDisruptionBudgets listed for the PostFilter in progress. Only the
	// scheduling goroutine uses them.
	nextStartNodeIndex int
	rand               *rand.Rand
	scratch            framework.Scratch
	pdbs               []*policyv1.PodDisruptionBudget
	// bindAnnotations holds explanation annotations (by pod UID) for the
	// binding a bind plugin makes through the handle.
	bindAnnotations sync.Map
	leading         chan struct{}
	leadOnce        sync.Once
	wg              sync.WaitGroup
	bindings        sync.WaitGroup
}

// New validates cfg, builds every profile's plugins and opens the HTTP
// listener (when ListenAddress is set). Run starts scheduling.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Client == nil {
		if cfg.RestConfig == nil {
			return nil, fmt.Errorf("scheduler: neither Client nor RestConfig is set: %w", spec.ErrInvalid)
		}
		cs, err := kubernetes.NewForConfig(cfg.RestConfig)
		if err != nil {
			return nil, fmt.Errorf("scheduler: client: %w", err)
		}
		cfg.Client = cs
	}
	if len(cfg.Profiles) == 0 {
		return nil, fmt.Errorf("scheduler: no profiles: %w", spec.ErrInvalid)
	}
	if cfg.PercentageOfNodesToScore < 0 || cfg.PercentageOfNodesToScore > 100 {
		return nil, fmt.Errorf("scheduler: percentageOfNodesToScore %d is not in 0..100: %w", cfg.PercentageOfNodesToScore, spec.ErrInvalid)
	}
	if cfg.PodInitialBackoff == 0 {
		cfg.PodInitialBackoff = DefaultPodInitialBackoff
	}
	if cfg.PodMaxBackoff == 0 {
		cfg.PodMaxBackoff = DefaultPodMaxBackoff
	}
	if cfg.PodInitialBackoff < 0 || cfg.PodMaxBackoff < cfg.PodInitialBackoff {
		return nil, fmt.Errorf("scheduler: pod backoff %v..%v is not a range: %w", cfg.PodInitialBackoff, cfg.PodMaxBackoff, spec.ErrInvalid)
	}
	if cfg.AssumedPodTTL == 0 {
		cfg.AssumedPodTTL = DefaultAssumedPodTTL
	}
	if cfg.ExplainAnnotation && !cfg.Explain {
		return nil, fmt.Errorf("scheduler: ExplainAnnotation needs Explain: %w", spec.ErrInvalid)
	}
	le := &cfg.LeaderElection
	if le.LeaseName == "" {
		le.LeaseName = DefaultLeaseName
	}
	if le.LeaseNamespace == "" {
		le.LeaseNamespace = DefaultLeaseNamespace
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
	if le.Identity == "" {
		host, _ := os.Hostname()
		le.Identity = host + "_" + uuid.NewString()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{
		cfg: cfg, log: log, client: cfg.Client,
		profiles:    map[string]*schedProfile{},
		rand:        newRand(),
		cache:       newCache(cfg.AssumedPodTTL),
		snap:        newSnapshot(),
		metrics:     newMetrics(),
		parallelism: cfg.Parallelism,
		recorders:   map[string]events.EventRecorder{},
		leading:     make(chan struct{}),
		explained:   explanations{max: 100000},
	}
	if s.parallelism <= 0 {
		s.parallelism = runtime.GOMAXPROCS(0)
	}
	var exts []*extender
	for _, ec := range cfg.Extenders {
		e, err := newExtender(s, ec)
		if err != nil {
			return nil, fmt.Errorf("scheduler: %w", err)
		}
		exts = append(exts, e)
	}
	var queueSort spec.QueueSortPlugin
	for i, p := range cfg.Profiles {
		if _, dup := s.profiles[p.SchedulerName]; dup {
			return nil, fmt.Errorf("scheduler: two profiles named %q: %w", p.SchedulerName, spec.ErrInvalid)
		}
		prof, err := newProfile(s, p, cfg.Registry, exts)
		if err != nil {
			return nil, fmt.Errorf("scheduler: %w", err)
		}
		// One queue serves every profile, so they must sort it alike (the
		// kube-scheduler has the same rule).
		if i > 0 && queueSortName(prof.QueueSort) != queueSortName(queueSort) {
			return nil, fmt.Errorf("scheduler: profiles %q and %q have different QueueSort plugins (%q, %q): %w",
				cfg.Profiles[0].SchedulerName, p.SchedulerName, queueSortName(queueSort), queueSortName(prof.QueueSort), spec.ErrInvalid)
		}
		if i == 0 {
			queueSort = prof.QueueSort
		}
		s.profiles[p.SchedulerName] = prof
	}
	s.queue = newSchedulingQueue(safeLess(queueSort, log), cfg.PodInitialBackoff, cfg.PodMaxBackoff, time.Now)
	s.queue.onChange = s.metrics.setQueue
	if cfg.ListenAddress != "" {
		l, err := net.Listen("tcp", cfg.ListenAddress)
		if err != nil {
			return nil, fmt.Errorf("scheduler: listen: %w", err)
		}
		s.listener = l
	}
	return s, nil
}

func queueSortName(p spec.QueueSortPlugin) string {
	if p == nil {
		return ""
	}
	return p.Name()
}

// safeLess wraps a QueueSort plugin so that a panic falls back to the
// default order (priority, then age) instead of breaking the queue.
func safeLess(p spec.QueueSortPlugin, log *slog.Logger) func(a, b *corev1.Pod) bool {
	if p == nil {
		return nil
	}
	return func(a, b *corev1.Pod) (less bool) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("QueueSort plugin panicked", "plugin", p.Name(), "panic", fmt.Sprint(r))
				less = a.CreationTimestamp.Before(&b.CreationTimestamp)
			}
		}()
		return p.Less(a, b)
	}
}

// Addr is the HTTP listener's address ("" without ListenAddress).
func (s *Scheduler) Addr() string {
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}

// Handler serves /metrics, /healthz, /readyz and /explain/NAMESPACE/NAME.
func (s *Scheduler) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/livez", ok)
	mux.HandleFunc("/readyz", ok)
	mux.HandleFunc("/explain/", s.serveExplain)
	return mux
}

// Leading is closed once this replica leads (at once without leader
// election) and its scheduling loop runs.
func (s *Scheduler) Leading() <-chan struct{} { return s.leading }

// Explanation returns the recorded explanation of a pod's last attempt
// (nil when none or Explain is off).
func (s *Scheduler) Explanation(namespace, name string) *Explanation {
	return s.explained.get(namespace, name)
}

// Run starts the informers, waits for their caches, then (after winning
// the leader election, if enabled) schedules until ctx ends. It returns
// nil when ctx ends, or an error (leadership lost, caches not synced).
func (s *Scheduler) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var srv *http.Server
	if s.listener != nil {
		srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("scheduler HTTP server", "err", err)
			}
		}()
	}
	defer func() {
		cancel()
		s.queue.Close()
		if srv != nil {
			sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
			_ = srv.Shutdown(sctx)
			c()
		}
		if s.factory != nil {
			s.factory.Shutdown()
		}
		if s.broadcaster != nil {
			s.broadcaster.Shutdown()
		}
		s.wg.Wait()
	}()

	s.broadcaster = events.NewBroadcaster(&events.EventSinkImpl{Interface: s.client.EventsV1()})
	s.broadcaster.StartRecordingToSink(ctx.Done())
	for name := range s.profiles {
		s.recorders[name] = s.broadcaster.NewRecorder(scheme.Scheme, name)
	}
	if err := s.startInformers(ctx); err != nil {
		return err
	}
	if !s.cfg.LeaderElection.Enabled {
		s.schedule(ctx)
		return nil
	}
	le := s.cfg.LeaderElection
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, le.LeaseNamespace, le.LeaseName,
		s.client.CoreV1(), s.client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: le.Identity})
	if err != nil {
		return fmt.Errorf("scheduler: leader election lock: %w", err)
	}
	lost := make(chan struct{})
	// scheduling counts the leader's scheduling loop; Run waits for it.
	var scheduling sync.WaitGroup
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: le.LeaseDuration, RenewDeadline: le.RenewDeadline, RetryPeriod: le.RetryPeriod,
		ReleaseOnCancel: true, Name: le.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				// client-go starts this in a goroutine; if Run is already
				// returning, lctx is done and schedule returns at once.
				scheduling.Add(1)
				defer scheduling.Done()
				s.log.Info("leading", "lease", le.LeaseNamespace+"/"+le.LeaseName, "identity", le.Identity)
				s.schedule(lctx)
			},
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					close(lost)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("scheduler: leader election: %w", err)
	}
	elector.Run(ctx)
	cancel()
	scheduling.Wait()
	select {
	case <-lost:
		return errors.New("scheduler: leader election lost")
	default:
		return nil
	}
}

// startInformers starts the pod, node and PDB informers and registers the
// event handlers that feed the queue and the cache.
func (s *Scheduler) startInformers(ctx context.Context) error {
	s.factory = informers.NewSharedInformerFactory(s.client, 0)
	podInf := s.factory.InformerFor(&corev1.Pod{}, func(c kubernetes.Interface, resync time.Duration) toolscache.SharedIndexInformer {
		return newPodInformer(c, resync)
	})
	s.podLister = corelisters.NewPodLister(podInf.GetIndexer())
	nodeInf := s.factory.Core().V1().Nodes().Informer()
	nsLister := s.factory.Core().V1().Namespaces().Lister()
	s.snap.namespaces = func(name string) (map[string]string, bool) {
		ns, err := nsLister.Get(name)
		if err != nil {
			return nil, false
		}
		return ns.Labels, true
	}
	pdbInf := s.factory.Policy().V1().PodDisruptionBudgets()
	s.pdbLister = pdbInf.Lister()
	s.pdbSynced = pdbInf.Informer().HasSynced
	podReg, err := podInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    s.onPodAdd,
		UpdateFunc: s.onPodUpdate,
		DeleteFunc: s.onPodDelete,
	})
	if err != nil {
		return err
	}
	nodeReg, err := nodeInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    s.onNodeAdd,
		UpdateFunc: s.onNodeUpdate,
		DeleteFunc: s.onNodeDelete,
	})
	if err != nil {
		return err
	}
	s.factory.Start(ctx.Done())
	for typ, ok := range s.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("scheduler: the %v informer did not sync", typ)
		}
	}
	// An informer has synced once its store holds the first list; the
	// handlers may still be working through it. Scheduling before they
	// have would place pods on nodes whose existing pods the cache has not
	// counted yet (overcommitting them after a restart), so wait for the
	// handlers too, as the kube-scheduler does.
	if !toolscache.WaitForCacheSync(ctx.Done(), podReg.HasSynced, nodeReg.HasSynced) {
		return fmt.Errorf("scheduler: the pod and node event handlers did not sync: %w", ctx.Err())
	}
	return nil
}

// listPDBs lists the PodDisruptionBudgets from the informer (none before
// the informers start, as in tests that drive cycles directly).
func (s *Scheduler) listPDBs() ([]*policyv1.PodDisruptionBudget, error) {
	if s.pdbLister == nil {
		return nil, nil
	}
	out, err := s.pdbLister.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing PodDisruptionBudgets: %w", err)
	}
	return out, nil
}

// schedule runs the scheduling loop and the queue's housekeeping until
// ctx ends.
func (s *Scheduler) schedule(ctx context.Context) {
	s.leadOnce.Do(func() { close(s.leading) })
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		flush := time.NewTicker(100 * time.Millisecond)
		defer flush.Stop()
		cleanup := time.NewTicker(time.Second)
		defer cleanup.Stop()
		for {
			select {
			case <-ctx.Done():
				s.queue.Close()
				return
			case <-flush.C:
				s.queue.Flush()
			case now := <-cleanup.C:
				if expired := s.cache.Cleanup(now); len(expired) > 0 {
					s.log.Info("assumed pods expired", "count", len(expired))
					s.queue.MoveAllUnschedulable()
				}
			}
		}
	}()
	for ctx.Err() == nil {
		s.scheduleOne(ctx)
	}
	wg.Wait()
	s.bindings.Wait()
}
