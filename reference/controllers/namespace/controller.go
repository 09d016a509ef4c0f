package namespace

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	corelisters "k8s.io/client-go/listers/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubelab/kubelab/reference/controllers/controller"
)

// Controller is the namespace controller.
type Controller struct {
	ctx      controller.Context
	dynamic  dynamic.Interface
	nsLister corelisters.NamespaceLister
	queue    workqueue.TypedRateLimitingInterface[string]
	now      func() time.Time
}

// New registers the Namespace informer and returns the controller; it
// needs c.Dynamic.
func New(c controller.Context) (*Controller, error) {
	if c.Dynamic == nil {
		return nil, errors.New("namespace controller: no dynamic client (Context.Dynamic)")
	}
	ctl := &Controller{ctx: c, dynamic: c.Dynamic, queue: c.NewQueue(Name), now: time.Now}
	inf := c.Informers.Core().V1().Namespaces()
	ctl.nsLister = inf.Lister()
	enqueue := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok && ns.DeletionTimestamp != nil {
			ctl.queue.Add(ns.Name)
		}
	}
	if _, err := inf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, n any) { enqueue(n) },
	}); err != nil {
		return nil, err
	}
	return ctl, nil
}

// Run syncs namespaces with upstream's 10 workers (--concurrent-namespace-syncs)
// until ctx ends.
func (ctl *Controller) Run(ctx context.Context) {
	controller.RunWorkers(ctx, ctl.ctx.Log(), ctl.queue, 10, ctl.sync)
}

// sync runs one deletion pass over the namespace name, if it is
// terminating: delete its content, report the conditions, finalize it when
// empty or look again later.
func (ctl *Controller) sync(ctx context.Context, name string) error {
	cached, err := ctl.nsLister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !Terminating(cached) {
		return nil
	}
	// The API server's copy: the cache may trail a finalize already done.
	ns, err := ctl.ctx.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !Terminating(ns) {
		return nil
	}
	content := ctl.deleteContent(ctx, name)
	d := Decide(ns, content, metav1.NewTime(ctl.now()))
	if !equality.Semantic.DeepEqual(d.Conditions, ns.Status.Conditions) {
		upd := ns.DeepCopy()
		upd.Status.Conditions = d.Conditions
		if ns, err = ctl.ctx.Client.CoreV1().Namespaces().UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("update namespace %s status: %w", name, err)
		}
	}
	if !d.Finalize {
		ctl.queue.AddAfter(name, d.RequeueAfter)
		return nil
	}
	_, err = ctl.ctx.Client.CoreV1().Namespaces().Finalize(ctx, WithoutFinalizer(ns), metav1.UpdateOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("finalize namespace %s: %w", name, err)
	}
	return nil
}

// deleteContent deletes every namespaced object of ns that discovery lists
// and reports what remains.
func (ctl *Controller) deleteContent(ctx context.Context, ns string) Content {
	c := Content{Remaining: map[schema.GroupResource]int{}, Finalizers: map[string]int{}}
	lists, err := ctl.ctx.Client.Discovery().ServerPreferredNamespacedResources()
	if err != nil {
		var gd *discovery.ErrGroupDiscoveryFailed
		if errors.As(err, &gd) {
			for gv, e := range gd.Groups {
				c.DiscoveryFailures = append(c.DiscoveryFailures, fmt.Sprintf("%s: %v", gv, e))
			}
		} else {
			c.DiscoveryFailures = append(c.DiscoveryFailures, err.Error())
		}
	}
	steps, parse := Plan(lists)
	c.ParseFailures = parse
	now := ctl.now()
	for _, s := range steps {
		ctl.deleteResource(ctx, ns, s, now, &c)
	}
	return c
}

// deleteResource runs one step and counts what is left of its resource.
func (ctl *Controller) deleteResource(ctx context.Context, ns string, s Step, now time.Time, c *Content) {
	ri := ctl.dynamic.Resource(s.Resource).Namespace(ns)
	gr := s.Resource.GroupResource()
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	if s.Collection {
		err := ri.DeleteCollection(ctx, opts, metav1.ListOptions{})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsMethodNotSupported(err) {
			c.DeleteFailures = append(c.DeleteFailures, fmt.Sprintf("%s: %v", gr, err))
		}
	} else if list, err := ri.List(ctx, metav1.ListOptions{}); err == nil {
		for _, item := range list.Items {
			if item.GetDeletionTimestamp() != nil {
				continue
			}
			if err := ri.Delete(ctx, item.GetName(), opts); err != nil && !apierrors.IsNotFound(err) {
				c.DeleteFailures = append(c.DeleteFailures, fmt.Sprintf("%s %s: %v", gr, item.GetName(), err))
			}
		}
	}
	// What is left: objects held by finalizers or a grace period, or
	// created since.
	list, err := ri.List(ctx, metav1.ListOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) && !apierrors.IsMethodNotSupported(err) {
			c.DeleteFailures = append(c.DeleteFailures, fmt.Sprintf("%s: %v", gr, err))
		}
		return
	}
	for _, item := range list.Items {
		c.Remaining[gr]++
		for _, f := range item.GetFinalizers() {
			c.Finalizers[f]++
		}
		if ts := item.GetDeletionTimestamp(); ts != nil {
			if left := int64(ts.Sub(now).Seconds()); left > c.EstimateSeconds {
				c.EstimateSeconds = left
			}
		}
	}
}
