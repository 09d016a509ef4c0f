// Package proxy is kubelab's kube-proxy: it watches Services and
// EndpointSlices with client-go informers, computes the node's
// spec.ProxyState with BuildState (pure), and hands it to a spec.Proxy
// plugin's Sync, batched as upstream does: at most one sync per
// MinSyncPeriod however fast the API changes, and a full resync every
// SyncPeriod even when nothing changed (which repairs rules someone else
// removed). It serves /healthz and /metrics (upstream's metric names).
//
// The package never imports a concrete plugin: the Proxy comes in through
// Config (the kubelab command picks it from the registry by name).
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/kubelab/kubelab/spec"
)

// Defaults, as upstream kube-proxy's.
const (
	// DefaultMinSyncPeriod is the shortest time between two syncs.
	DefaultMinSyncPeriod = time.Second
	// DefaultSyncPeriod is the longest time between two syncs.
	DefaultSyncPeriod = 30 * time.Second
)

// Config is what a Runner is built with.
type Config struct {
	// Client reaches the API server.
	Client kubernetes.Interface
	// NodeName is the node whose data plane is programmed.
	NodeName string
	// NodeAddresses are where NodePorts open. Empty means the node's
	// InternalIP and ExternalIP addresses from its Node object, read before
	// each sync until found.
	NodeAddresses []netip.Addr
	// Proxy is the data plane plugin.
	Proxy spec.Proxy
	// MinSyncPeriod and SyncPeriod default to DefaultMinSyncPeriod and
	// DefaultSyncPeriod.
	MinSyncPeriod, SyncPeriod time.Duration
	// Logger receives the logs; nil means discard.
	Logger *slog.Logger
}

// Runner is the proxy loop of one node. Build it with New, run it with Run.
type Runner struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	trigger chan struct{} // capacity 1: a pending "something changed"

	mu         sync.Mutex // guards the fields below
	queuedAt   time.Time  // oldest change not yet synced (zero: none)
	syncedAt   time.Time  // end of the last successful sync
	nodeAddrs  []netip.Addr
	lastState  spec.ProxyState
	lastErr    error
	syncsTotal int

	// Owned by the Run goroutine.
	recorder record.EventRecorder
	reported map[spec.SkippedServicePort]bool // skipped at the last sync
}

// New checks cfg and returns a Runner.
func New(cfg Config) (*Runner, error) {
	if cfg.Client == nil || cfg.Proxy == nil || cfg.NodeName == "" {
		return nil, fmt.Errorf("proxy: Client, Proxy and NodeName are required: %w", spec.ErrInvalid)
	}
	if cfg.MinSyncPeriod <= 0 {
		cfg.MinSyncPeriod = DefaultMinSyncPeriod
	}
	if cfg.SyncPeriod <= 0 {
		cfg.SyncPeriod = DefaultSyncPeriod
	}
	if cfg.MinSyncPeriod > cfg.SyncPeriod {
		return nil, fmt.Errorf("proxy: min sync period %s over sync period %s: %w", cfg.MinSyncPeriod, cfg.SyncPeriod, spec.ErrInvalid)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{cfg: cfg, log: log, metrics: newMetrics(), trigger: make(chan struct{}, 1), nodeAddrs: cfg.NodeAddresses}, nil
}

// changed records that the API changed and wakes the loop.
func (r *Runner) changed(counter prometheus.Counter) {
	counter.Inc()
	r.mu.Lock()
	if r.queuedAt.IsZero() {
		r.queuedAt = time.Now()
		r.metrics.lastQueued.SetToCurrentTime()
	}
	r.mu.Unlock()
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Run starts the informers, waits for their caches, and syncs until ctx
// ends; it then returns nil without cleaning up (the rules keep working
// until the next proxy takes over, as upstream's; call the plugin's
// Cleanup to remove them).
func (r *Runner) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(r.cfg.Client, 0)
	svcInf := factory.Core().V1().Services()
	epInf := factory.Discovery().V1().EndpointSlices()
	handler := func(c prometheus.Counter) cache.ResourceEventHandler {
		return cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { r.changed(c) },
			UpdateFunc: func(any, any) { r.changed(c) },
			DeleteFunc: func(any) { r.changed(c) },
		}
	}
	if _, err := svcInf.Informer().AddEventHandler(handler(r.metrics.serviceChanges)); err != nil {
		return err
	}
	if _, err := epInf.Informer().AddEventHandler(handler(r.metrics.endpointChanges)); err != nil {
		return err
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: r.cfg.Client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	r.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kube-proxy", Host: r.cfg.NodeName})
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("proxy: cache of %v did not sync", typ)
		}
	}
	r.log.Info("proxy caches synced", "node", r.cfg.NodeName)
	svcLister, epLister := svcInf.Lister(), epInf.Lister()
	var last time.Time
	resync := time.NewTimer(0) // first sync at once
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.trigger:
		case <-resync.C:
		}
		// Batching: wait out the rest of MinSyncPeriod since the last sync;
		// changes arriving meanwhile are taken by this same sync.
		if wait := r.cfg.MinSyncPeriod - time.Since(last); !last.IsZero() && wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		select { // this sync covers any pending trigger
		case <-r.trigger:
		default:
		}
		last = time.Now()
		if err := r.syncOnce(ctx, svcLister.List, epLister.List); err != nil {
			r.log.Error("proxy sync failed; retrying", "node", r.cfg.NodeName, "err", err)
			// Retry after MinSyncPeriod (the wait above enforces it).
			select {
			case r.trigger <- struct{}{}:
			default:
			}
		}
		if !resync.Stop() {
			select {
			case <-resync.C:
			default:
			}
		}
		resync.Reset(r.cfg.SyncPeriod)
	}
}

// syncOnce builds the state from the listers and syncs it.
func (r *Runner) syncOnce(ctx context.Context,
	listSvcs func(labels.Selector) ([]*corev1.Service, error),
	listSlices func(labels.Selector) ([]*discoveryv1.EndpointSlice, error)) error {
	r.mu.Lock()
	queued := r.queuedAt
	r.queuedAt = time.Time{}
	addrs := r.nodeAddrs
	r.mu.Unlock()
	requeue := func() {
		r.mu.Lock()
		if r.queuedAt.IsZero() || (!queued.IsZero() && queued.Before(r.queuedAt)) {
			r.queuedAt = queued
		}
		r.mu.Unlock()
	}
	if len(addrs) == 0 {
		addrs = r.readNodeAddresses(ctx)
	}
	svcs, err := listSvcs(labels.Everything())
	if err != nil {
		requeue()
		return err
	}
	slices, err := listSlices(labels.Everything())
	if err != nil {
		requeue()
		return err
	}
	state, skipped := BuildState(r.cfg.NodeName, addrs, svcs, slices)
	start := time.Now()
	err = r.cfg.Proxy.Sync(ctx, state)
	var partial *spec.PartialSyncError
	if errors.As(err, &partial) {
		skipped = append(skipped, partial.Skipped...)
	}
	r.metrics.skipped.Set(float64(len(skipped)))
	r.reportSkipped(skipped, svcs)
	took := time.Since(start)
	r.metrics.syncDuration.Observe(took.Seconds())
	r.mu.Lock()
	r.lastState, r.lastErr = state, err
	r.syncsTotal++
	r.mu.Unlock()
	switch {
	case err == nil:
	case errors.Is(err, spec.ErrUnsupported):
		// Partly programmed (reported above): everything else works; not
		// retried sooner.
		r.metrics.partialSyncs.Inc()
		err = nil
	default:
		r.metrics.syncFailures.Inc()
		requeue()
		return err
	}
	r.mu.Lock()
	r.syncedAt = time.Now()
	r.mu.Unlock()
	r.metrics.lastSync.SetToCurrentTime()
	r.log.Debug("proxy synced", "node", r.cfg.NodeName, "servicePorts", len(state.Services), "took", took)
	return err
}

// reportSkipped logs what could not be programmed and records a Warning
// event on each such Service, once per new reason (not on every resync).
func (r *Runner) reportSkipped(skipped []spec.SkippedServicePort, svcs []*corev1.Service) {
	now := map[spec.SkippedServicePort]bool{}
	for _, s := range skipped {
		now[s] = true
		if r.reported[s] {
			continue
		}
		r.log.Warn("service port not proxied", "namespace", s.Namespace, "name", s.Name, "port", s.PortName, "reason", s.Reason)
		if r.recorder == nil || s.Name == "" {
			continue
		}
		for _, svc := range svcs {
			if svc.Namespace == s.Namespace && svc.Name == s.Name {
				port := ""
				if s.PortName != "" {
					port = " port " + s.PortName
				}
				r.recorder.Eventf(svc, corev1.EventTypeWarning, EventReasonNotProxied, "node %s cannot proxy this service%s: %s", r.cfg.NodeName, port, s.Reason)
			}
		}
	}
	r.reported = now
}

// EventReasonNotProxied is the reason of the Warning event recorded on a
// Service that the node's proxy cannot program.
const EventReasonNotProxied = "NotProxied"

// readNodeAddresses reads the node's InternalIP and ExternalIP addresses;
// it remembers them once found.
func (r *Runner) readNodeAddresses(ctx context.Context) []netip.Addr {
	node, err := r.cfg.Client.CoreV1().Nodes().Get(ctx, r.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		r.log.Warn("node addresses unknown: NodePorts open nowhere for now", "node", r.cfg.NodeName, "err", err)
		return nil
	}
	var addrs []netip.Addr
	for _, a := range node.Status.Addresses {
		if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil {
			addrs = append(addrs, ip)
		}
	}
	if len(addrs) > 0 {
		r.mu.Lock()
		r.nodeAddrs = addrs
		r.mu.Unlock()
	}
	return addrs
}

// LastState returns the state of the last sync attempt, how many syncs
// were attempted, and the last attempt's error. For tests and debugging;
// the caller must not modify the state.
func (r *Runner) LastState() (spec.ProxyState, int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastState, r.syncsTotal, r.lastErr
}

// Healthy reports upstream's healthz rule: healthy once a sync succeeded,
// unless a change has been waiting for longer than twice the SyncPeriod
// (the loop or the plugin is stuck).
func (r *Runner) Healthy(now time.Time) (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.syncedAt.IsZero():
		return false, "no successful sync yet"
	case !r.queuedAt.IsZero() && now.Sub(r.queuedAt) > 2*r.cfg.SyncPeriod:
		return false, fmt.Sprintf("a change has waited %s (last sync %s)", now.Sub(r.queuedAt).Round(time.Second), r.syncedAt.Format(time.RFC3339))
	}
	return true, "last sync " + r.syncedAt.Format(time.RFC3339)
}

// Handler serves /healthz (200 or 503 with a reason, per Healthy) and
// /metrics (Prometheus text).
func (r *Runner) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := r.Healthy(time.Now())
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
	})
	mux.Handle("/metrics", promhttp.HandlerFor(r.metrics.registry, promhttp.HandlerOpts{}))
	return mux
}

// Serve serves Handler on ln until ctx ends.
func (r *Runner) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
