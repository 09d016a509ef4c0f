// Package ttlafterfinished is the "ttl-after-finished" controller: a Job
// with spec.ttlSecondsAfterFinished is deleted (foreground propagation, so
// its pods go first) that many seconds after it finished — its Complete or
// Failed condition became True.
//
// Expiry is the decision; Controller is the client-go edge, which checks
// the Job again from the API server before deleting it (the TTL may have
// been changed since the cache saw it), as upstream.
package ttlafterfinished

import (
	"context"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubelab/kubelab/reference/controllers/controller"
)

// Name is the controller's name in --controllers (upstream's alias).
const Name = "ttl-after-finished"

// ErrNoFinishTime: the Job's finished condition has no lastTransitionTime.
var ErrNoFinishTime = errors.New("finished condition without lastTransitionTime")

// Expiry says whether job is subject to the TTL (it has one, is not being
// deleted and has finished) and when it expires.
func Expiry(job *batchv1.Job) (expireAt time.Time, ok bool, err error) {
	if job.Spec.TTLSecondsAfterFinished == nil || job.DeletionTimestamp != nil {
		return time.Time{}, false, nil
	}
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			if c.LastTransitionTime.IsZero() {
				return time.Time{}, false, ErrNoFinishTime
			}
			return c.LastTransitionTime.Add(time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second), true, nil
		}
	}
	return time.Time{}, false, nil
}

// Controller is the ttl-after-finished controller.
type Controller struct {
	ctx    controller.Context
	lister batchlisters.JobLister
	queue  workqueue.TypedRateLimitingInterface[string]
	now    func() time.Time
}

// New registers the Job informer and returns the controller.
func New(c controller.Context) (*Controller, error) {
	ctl := &Controller{ctx: c, queue: c.NewQueue("ttl_jobs_to_delete"), now: time.Now}
	inf := c.Informers.Batch().V1().Jobs()
	ctl.lister = inf.Lister()
	enqueue := func(obj any) {
		if j, ok := obj.(*batchv1.Job); ok && j.Spec.TTLSecondsAfterFinished != nil {
			ctl.queue.Add(j.Namespace + "/" + j.Name)
		}
	}
	if _, err := inf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, n any) { enqueue(n) },
	}); err != nil {
		return nil, err
	}
	return ctl, nil
}

// Run processes Jobs with 5 workers (upstream's
// --concurrent-ttl-after-finished-syncs) until ctx ends.
func (ctl *Controller) Run(ctx context.Context) {
	controller.RunWorkers(ctx, ctl.ctx.Log(), ctl.queue, 5, ctl.sync)
}

func (ctl *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := toolscache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("%w: %v", controller.ErrNoRetry, err)
	}
	job, err := ctl.lister.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if due, err := ctl.due(key, job); err != nil || !due {
		return err
	}
	// The cache may be stale: decide again on the API server's Job.
	fresh, err := ctl.ctx.Client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if due, err := ctl.due(key, fresh); err != nil || !due {
		return err
	}
	fg := metav1.DeletePropagationForeground
	err = ctl.ctx.Client.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg,
		Preconditions: &metav1.Preconditions{UID: &fresh.UID, ResourceVersion: &fresh.ResourceVersion}})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// due reports whether job has expired; a job not yet expired is queued
// again for its expiry.
func (ctl *Controller) due(key string, job *batchv1.Job) (bool, error) {
	at, ok, err := Expiry(job)
	if err != nil {
		return false, fmt.Errorf("%w: job %s: %v", controller.ErrNoRetry, key, err)
	}
	if !ok {
		return false, nil
	}
	if left := at.Sub(ctl.now()); left > 0 {
		ctl.queue.AddAfter(key, left)
		return false, nil
	}
	return true, nil
}
