package endpointslice

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubelab/kubelab/reference/controllers/controller"
)

// Controller is the endpointslice controller. Build it with New; Run runs
// it.
type Controller struct {
	ctx         controller.Context
	svcLister   corelisters.ServiceLister
	podLister   corelisters.PodLister
	sliceLister discoverylisters.EndpointSliceLister
	queue       workqueue.TypedRateLimitingInterface[string]
	written     *tracker
}

// New registers the Service, Pod and EndpointSlice informers and returns
// the controller.
func New(c controller.Context) (*Controller, error) {
	ctl := &Controller{ctx: c, queue: c.NewQueue("endpoint_slice"), written: newTracker()}
	svcInf := c.Informers.Core().V1().Services()
	podInf := c.Informers.Core().V1().Pods()
	sliceInf := c.Informers.Discovery().V1().EndpointSlices()
	ctl.svcLister, ctl.podLister, ctl.sliceLister = svcInf.Lister(), podInf.Lister(), sliceInf.Lister()
	enqueueSvc := func(obj any) {
		if s, ok := unwrap(obj).(*corev1.Service); ok {
			ctl.queue.Add(s.Namespace + "/" + s.Name)
		}
	}
	if _, err := svcInf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: enqueueSvc, UpdateFunc: func(_, n any) { enqueueSvc(n) }, DeleteFunc: enqueueSvc,
	}); err != nil {
		return nil, err
	}
	if _, err := podInf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: ctl.onPod,
		UpdateFunc: func(o, n any) {
			ctl.onPod(n)
			if !labels.Equals(o.(*corev1.Pod).Labels, n.(*corev1.Pod).Labels) {
				ctl.onPod(o)
			}
		},
		DeleteFunc: ctl.onPod,
	}); err != nil {
		return nil, err
	}
	onSlice := func(obj any) {
		s, ok := unwrap(obj).(*discoveryv1.EndpointSlice)
		if !ok || s.Labels[discoveryv1.LabelManagedBy] != ControllerName {
			return
		}
		if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
			ctl.queue.Add(s.Namespace + "/" + name)
		}
	}
	if _, err := sliceInf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: onSlice, UpdateFunc: func(_, n any) { onSlice(n) }, DeleteFunc: onSlice,
	}); err != nil {
		return nil, err
	}
	return ctl, nil
}

func unwrap(obj any) any {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		return d.Obj
	}
	return obj
}

// onPod queues the Services whose selector matches the pod.
func (ctl *Controller) onPod(obj any) {
	p, ok := unwrap(obj).(*corev1.Pod)
	if !ok {
		return
	}
	svcs, _ := ctl.svcLister.Services(p.Namespace).List(labels.Everything())
	for _, s := range svcs {
		if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(p.Labels)) {
			ctl.queue.Add(s.Namespace + "/" + s.Name)
		}
	}
}

// Run syncs Services with Workers workers until ctx ends.
func (ctl *Controller) Run(ctx context.Context) {
	controller.RunWorkers(ctx, ctl.ctx.Log(), ctl.queue, Workers, ctl.sync)
}

func (ctl *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := toolscache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("%w: %v", controller.ErrNoRetry, err)
	}
	mine := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: ControllerName})
	existing, err := ctl.sliceLister.EndpointSlices(ns).List(mine)
	if err != nil {
		return err
	}
	slices := ctl.ctx.Client.DiscoveryV1().EndpointSlices(ns)
	svc, err := ctl.svcLister.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		ctl.written.Forget(key)
		// The garbage collector removes owned slices; do it here too so
		// that nothing stale routes traffic meanwhile.
		var errs []error
		for _, s := range existing {
			if err := slices.Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	if err != nil {
		return err
	}
	if len(svc.Spec.Selector) == 0 || svc.Spec.Type == corev1.ServiceTypeExternalName || svc.DeletionTimestamp != nil {
		return nil
	}
	if ctl.written.Stale(key, existing) {
		return fmt.Errorf("service %s: %w", key, ErrStaleCache)
	}
	var owned []*discoveryv1.EndpointSlice
	for _, s := range existing {
		if ref := metav1.GetControllerOfNoCopy(s); ref == nil || ref.UID == svc.UID {
			owned = append(owned, s)
		}
	}
	pods, err := ctl.podLister.Pods(ns).List(labels.SelectorFromSet(svc.Spec.Selector))
	if err != nil {
		return err
	}
	ch := Plan(svc, Desired(svc, pods), owned, MaxEndpointsPerSlice)
	var errs []error
	for _, s := range ch.Create {
		created, err := slices.Create(ctx, s, metav1.CreateOptions{})
		if err != nil {
			if apierrors.IsForbidden(err) && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				return nil
			}
			errs = append(errs, err)
			continue
		}
		ctl.written.Created(key, created.Name)
	}
	for _, s := range ch.Update {
		if _, err := slices.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			errs = append(errs, err)
			continue
		}
		ctl.written.Updated(key, s.Name, s.ResourceVersion)
	}
	for _, s := range ch.Delete {
		uid := s.UID
		err := slices.Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
			continue
		}
		ctl.written.Deleted(key, s.Name, uid)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("endpointslices of %s: %w", key, err)
	}
	return nil
}
