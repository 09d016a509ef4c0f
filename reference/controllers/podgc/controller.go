package podgc

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/kubelab/kubelab/reference/controllers/controller"
)

// Options tune the controller (zero values: upstream's defaults).
type Options struct {
	// TerminatedThreshold: see DefaultTerminatedThreshold (negative: off).
	TerminatedThreshold int
	// GCPeriod: see DefaultGCPeriod.
	GCPeriod time.Duration
	// Quarantine: see DefaultQuarantine.
	Quarantine time.Duration
}

// Controller is the pod garbage collector.
type Controller struct {
	ctx        controller.Context
	opts       Options
	podLister  corelisters.PodLister
	nodeLister corelisters.NodeLister
	quarantine Quarantine
	now        func() time.Time
}

// New registers the Pod and Node informers and returns the controller
// with upstream's defaults.
func New(c controller.Context) (*Controller, error) { return NewWithOptions(c, Options{}) }

// NewWithOptions is New with opts.
func NewWithOptions(c controller.Context, opts Options) (*Controller, error) {
	if opts.TerminatedThreshold == 0 {
		opts.TerminatedThreshold = DefaultTerminatedThreshold
	}
	if opts.GCPeriod == 0 {
		opts.GCPeriod = DefaultGCPeriod
	}
	if opts.Quarantine == 0 {
		opts.Quarantine = DefaultQuarantine
	}
	return &Controller{ctx: c, opts: opts, podLister: c.Informers.Core().V1().Pods().Lister(),
		nodeLister: c.Informers.Core().V1().Nodes().Lister(), now: time.Now}, nil
}

// Run collects every GCPeriod until ctx ends.
func (ctl *Controller) Run(ctx context.Context) {
	t := time.NewTicker(ctl.opts.GCPeriod)
	defer t.Stop()
	for {
		ctl.GC(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// GC runs one collection from the informers' caches.
func (ctl *Controller) GC(ctx context.Context) {
	log := ctl.ctx.Log()
	pods, err := ctl.podLister.List(labels.Everything())
	if err != nil {
		log.Error("list pods", "err", err)
		return
	}
	exists := func(n string) bool { _, err := ctl.nodeLister.Get(n); return err == nil }
	gone := map[string]bool{}
	for _, n := range ctl.quarantine.Observe(pods, exists, ctl.now(), ctl.opts.Quarantine) {
		// The cache may trail: only the API server's NotFound counts.
		if _, err := ctl.ctx.Client.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			gone[n] = true
		}
	}
	for _, v := range Plan(pods, ctl.opts.TerminatedThreshold, gone) {
		p := v.Pod
		if v.Why == Orphaned && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			c := p.DeepCopy()
			c.Status.Phase = corev1.PodFailed
			c.Status.Conditions = append(c.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget,
				Status: corev1.ConditionTrue, Reason: ReasonDeletionByPodGC, Message: "PodGC: node no longer exists",
				LastTransitionTime: metav1.NewTime(ctl.now())})
			if _, err := ctl.ctx.Client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
				log.Info("mark orphaned pod failed", "pod", p.Namespace+"/"+p.Name, "err", err)
				continue // next round
			}
		}
		zero := int64(0)
		if err := ctl.ctx.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name,
			metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &p.UID}}); err != nil && !apierrors.IsNotFound(err) {
			log.Info("force delete pod", "pod", p.Namespace+"/"+p.Name, "err", err)
		}
	}
}
