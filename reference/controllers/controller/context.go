package controller

import (
	"context"
	"errors"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// Context is what the manager hands every controller's constructor. All
// controllers of one manager share Informers: a constructor asks it for the
// informers it needs before the manager starts the factory, so each kind
// is listed and watched once per process.
type Context struct {
	// Client talks to the API server.
	Client kubernetes.Interface
	// Dynamic talks to the API server about any resource (nil when the
	// manager has none; controllers that need it fail to build).
	Dynamic dynamic.Interface
	// Informers is the manager's shared informer factory (no resync).
	Informers informers.SharedInformerFactory
	// Logger is the controller's logger (never nil once the manager built
	// it; tests may leave it nil and get slog.Default()).
	Logger *slog.Logger
	// Metrics receives the client-go workqueue metrics (nil: none).
	Metrics workqueue.MetricsProvider
	// RootCA is the PEM bundle of --root-ca-file (the
	// root-ca-cert-publisher's content; nil when the flag is unset).
	RootCA []byte
	// Recorder records Events as this controller (nil: none are
	// recorded; see Eventf).
	Recorder record.EventRecorder
}

// Eventf records an Event about obj through c.Recorder, if any.
func (c Context) Eventf(obj runtime.Object, eventType, reason, format string, args ...any) {
	if c.Recorder != nil {
		c.Recorder.Eventf(obj, eventType, reason, format, args...)
	}
}

// Log returns c.Logger, or slog.Default() when it is nil.
func (c Context) Log() *slog.Logger {
	if c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}

// NewQueue returns a rate-limited workqueue of object keys named name (the
// workqueue metrics' "name" label, upstream's controller names), with
// client-go's default controller rate limiter: per-item exponential backoff
// from 5 ms to 1000 s, and an overall 10 qps / 100 burst bucket.
func (c Context) NewQueue(name string) workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name, MetricsProvider: c.Metrics})
}

// Syncer reconciles the object named by key ("namespace/name" or "name").
// A nil error forgets the key's backoff; an error requeues it rate-limited.
type Syncer func(ctx context.Context, key string) error

// RunWorkers runs workers goroutines that take keys from q and sync them
// until ctx ends, then shuts q down and waits for them. A failed key is
// requeued with backoff (conflicts included: the next sync reads the
// object again from the informer); ErrNoRetry-wrapped errors are logged
// and forgotten.
func RunWorkers(ctx context.Context, log *slog.Logger, q workqueue.TypedRateLimitingInterface[string], workers int, sync Syncer) {
	done := make(chan struct{})
	for i := 0; i < workers; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for processNext(ctx, log, q, sync) {
			}
		}()
	}
	<-ctx.Done()
	q.ShutDown()
	for i := 0; i < workers; i++ {
		<-done
	}
}

// ErrNoRetry marks a sync error that retrying cannot fix (a malformed
// object): RunWorkers logs it and does not requeue the key.
var ErrNoRetry = errors.New("not retried")

func processNext(ctx context.Context, log *slog.Logger, q workqueue.TypedRateLimitingInterface[string], sync Syncer) bool {
	key, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(key)
	start := time.Now()
	err := sync(ctx, key)
	switch {
	case err == nil:
		q.Forget(key)
	case errors.Is(err, ErrNoRetry):
		log.Warn("sync failed, not retried", "key", key, "err", err)
		q.Forget(key)
	default:
		if apierrors.IsConflict(err) {
			log.Debug("sync conflict, retrying", "key", key, "err", err)
		} else {
			log.Info("sync failed, retrying", "key", key, "err", err, "after", time.Since(start).String())
		}
		q.AddRateLimited(key)
	}
	return true
}
