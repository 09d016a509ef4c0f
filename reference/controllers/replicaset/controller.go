package replicaset

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubelab/kubelab/reference/controllers/controller"
)

// Controller is the replicaset controller (and, built with
// NewReplicationController, the replicationcontroller one). Build it with
// New; Run runs it.
type Controller struct {
	ctx          controller.Context
	name         string
	gvk          schema.GroupVersionKind
	owners       OwnerStore
	podLister    corelisters.PodLister
	queue        workqueue.TypedRateLimitingInterface[string]
	expectations *controller.Expectations
	// now is the clock (time.Now).
	now func() time.Time
}

// OwnerStore reads and writes the controller's owners: ReplicaSets, or
// another kind with the same semantics seen as ReplicaSets (the
// replicationcontroller controller's ReplicationControllers).
type OwnerStore interface {
	// Informer is the owners' shared informer.
	Informer() toolscache.SharedIndexInformer
	// Get and List read the informer's cache.
	Get(namespace, name string) (*appsv1.ReplicaSet, error)
	List(namespace string) ([]*appsv1.ReplicaSet, error)
	// GetFresh reads the owner from the API server.
	GetFresh(ctx context.Context, namespace, name string) (*appsv1.ReplicaSet, error)
	// WriteStatus writes st as cached's status unless it is what cached
	// holds already.
	WriteStatus(ctx context.Context, cached *appsv1.ReplicaSet, st appsv1.ReplicaSetStatus) error
}

// New registers the ReplicaSet and Pod informers and returns the
// replicaset controller.
func New(c controller.Context) (*Controller, error) {
	return NewWithOwners(c, Name, GVK, replicaSets{c})
}

// NewWithOwners builds the controller for owners of kind gvk under the
// controller name name (its queue's and log's name); the pods it creates
// are controlled by gvk.
func NewWithOwners(c controller.Context, name string, gvk schema.GroupVersionKind, owners OwnerStore) (*Controller, error) {
	ctl := &Controller{ctx: c, name: name, gvk: gvk, owners: owners, queue: c.NewQueue(name),
		expectations: controller.NewExpectations(), now: time.Now}
	podInf := c.Informers.Core().V1().Pods()
	ctl.podLister = podInf.Lister()
	enqueue := func(obj any) {
		if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if m, err := meta.Accessor(obj); err == nil {
			ctl.queue.Add(key(m))
		}
	}
	if _, err := owners.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, n any) { enqueue(n) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if m, err := meta.Accessor(obj); err == nil {
				ctl.expectations.Delete(key(m))
				ctl.queue.Add(key(m))
			}
		},
	}); err != nil {
		return nil, err
	}
	if _, err := podInf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: ctl.addPod, UpdateFunc: ctl.updatePod, DeleteFunc: ctl.deletePod,
	}); err != nil {
		return nil, err
	}
	return ctl, nil
}

// Run syncs its owners with Workers workers until ctx ends.
func (ctl *Controller) Run(ctx context.Context) {
	controller.RunWorkers(ctx, ctl.ctx.Log(), ctl.queue, Workers, ctl.sync)
}

func key(o metav1.Object) string { return o.GetNamespace() + "/" + o.GetName() }

// owner returns the ReplicaSet that ref names in namespace, if it still
// is that object (same UID).
func (ctl *Controller) owner(namespace string, ref *metav1.OwnerReference) *appsv1.ReplicaSet {
	if ref == nil || ref.Kind != ctl.gvk.Kind || ref.APIVersion != ctl.gvk.GroupVersion().String() {
		return nil
	}
	rs, err := ctl.owners.Get(namespace, ref.Name)
	if err != nil || rs.UID != ref.UID {
		return nil
	}
	return rs
}

// matching returns the ReplicaSets whose selector matches an orphan pod.
func (ctl *Controller) matching(p *corev1.Pod) []*appsv1.ReplicaSet {
	all, err := ctl.owners.List(p.Namespace)
	if err != nil {
		return nil
	}
	var out []*appsv1.ReplicaSet
	for _, rs := range all {
		sel, err := selectorOf(rs)
		if err != nil || sel.Empty() {
			continue
		}
		if sel.Matches(labels.Set(p.Labels)) {
			out = append(out, rs)
		}
	}
	return out
}

func (ctl *Controller) addPod(obj any) {
	p := obj.(*corev1.Pod)
	if p.DeletionTimestamp != nil {
		ctl.deletePod(p)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
		if rs := ctl.owner(p.Namespace, ref); rs != nil {
			ctl.expectations.CreationObserved(key(rs))
			ctl.queue.Add(key(rs))
		}
		return
	}
	for _, rs := range ctl.matching(p) {
		ctl.queue.Add(key(rs))
	}
}

func (ctl *Controller) updatePod(oldObj, newObj any) {
	old, cur := oldObj.(*corev1.Pod), newObj.(*corev1.Pod)
	if old.ResourceVersion == cur.ResourceVersion {
		return
	}
	if cur.DeletionTimestamp != nil && old.DeletionTimestamp == nil {
		// A graceful deletion: the pod stops counting now; its owner's
		// deletion expectation is met here, not when it finally goes.
		ctl.deletePod(cur)
		if !labels.Equals(old.Labels, cur.Labels) {
			ctl.deletePod(old)
		}
		return
	}
	oldRef, curRef := metav1.GetControllerOfNoCopy(old), metav1.GetControllerOfNoCopy(cur)
	if oldRef != nil && (curRef == nil || oldRef.UID != curRef.UID) {
		if rs := ctl.owner(old.Namespace, oldRef); rs != nil {
			ctl.queue.Add(key(rs))
		}
	}
	if curRef != nil {
		if rs := ctl.owner(cur.Namespace, curRef); rs != nil {
			ctl.queue.Add(key(rs))
			// A pod that just became ready becomes available after
			// minReadySeconds: look again then.
			if !controller.IsPodReady(old) && controller.IsPodReady(cur) && rs.Spec.MinReadySeconds > 0 {
				ctl.queue.AddAfter(key(rs), time.Duration(rs.Spec.MinReadySeconds)*time.Second+time.Second)
			}
		}
		return
	}
	if !labels.Equals(old.Labels, cur.Labels) || oldRef != nil {
		for _, rs := range ctl.matching(cur) {
			ctl.queue.Add(key(rs))
		}
	}
}

func (ctl *Controller) deletePod(obj any) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if rs := ctl.owner(p.Namespace, metav1.GetControllerOfNoCopy(p)); rs != nil {
		ctl.expectations.DeletionObserved(key(rs), key(p))
		ctl.queue.Add(key(rs))
	}
}

// sync reconciles one ReplicaSet: claim its pods, create or delete pods
// when the expectations allow, write its status.
func (ctl *Controller) sync(ctx context.Context, k string) error {
	ns, name, err := toolscache.SplitMetaNamespaceKey(k)
	if err != nil {
		return fmt.Errorf("%w: %v", controller.ErrNoRetry, err)
	}
	rs, err := ctl.owners.Get(ns, name)
	if apierrors.IsNotFound(err) {
		ctl.expectations.Delete(k)
		return nil
	}
	if err != nil {
		return err
	}
	sel, err := selectorOf(rs)
	if err != nil {
		return fmt.Errorf("%w: replicaset %s: selector: %v", controller.ErrNoRetry, k, err)
	}
	satisfied := ctl.expectations.Satisfied(k)
	all, err := ctl.podLister.Pods(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	owned, err := ctl.claim(ctx, rs, sel, all)
	if err != nil {
		return err
	}
	var active []*corev1.Pod
	terminating := 0
	for _, p := range owned {
		switch {
		case controller.IsPodActive(p):
			active = append(active, p)
		case p.DeletionTimestamp != nil:
			terminating++
		}
	}
	now := metav1.NewTime(ctl.now())
	var manageErr error
	if satisfied && rs.DeletionTimestamp == nil {
		manageErr = ctl.manage(ctx, rs, active, ctl.related(rs, all), now)
	}
	st := CalculateStatus(rs, active, terminating, manageErr, now)
	if err := ctl.writeStatus(ctx, rs, st); err != nil {
		return err
	}
	if manageErr == nil && rs.Spec.MinReadySeconds > 0 && st.ReadyReplicas == replicas(rs) && st.AvailableReplicas != replicas(rs) {
		ctl.queue.AddAfter(k, time.Duration(rs.Spec.MinReadySeconds)*time.Second)
	}
	return manageErr
}

// claim returns the pods rs owns after adopting matching orphans and
// releasing owned pods that no longer match.
func (ctl *Controller) claim(ctx context.Context, rs *appsv1.ReplicaSet, sel labels.Selector, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	patch := func(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, sub ...string) error {
		_, err := ctl.ctx.Client.CoreV1().Pods(rs.Namespace).Patch(ctx, name, pt, data, opts, sub...)
		return err
	}
	var owned []*corev1.Pod
	var errs []error
	checked, canAdopt := false, false
	for _, p := range pods {
		switch controller.Decide(rs, sel, p) {
		case controller.Keep:
			owned = append(owned, p)
		case controller.Adopt:
			if !checked {
				// Upstream's RecheckDeletionTimestamp: adopt only for a
				// ReplicaSet that still exists, is this one and is not
				// being deleted, read from the API server, not the cache.
				checked = true
				fresh, err := ctl.owners.GetFresh(ctx, rs.Namespace, rs.Name)
				canAdopt = err == nil && fresh.UID == rs.UID && fresh.DeletionTimestamp == nil
			}
			if !canAdopt {
				continue
			}
			if err := controller.AdoptObject(ctx, patch, rs, ctl.gvk, p); err != nil {
				errs = append(errs, err)
				continue
			}
			owned = append(owned, p)
		case controller.Release:
			if err := controller.ReleaseObject(ctx, patch, rs, p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return owned, errors.Join(errs...)
}

// related returns the active pods of every ReplicaSet controlled by the
// same owner as rs (its Deployment), for the deletion ranking; rs's own
// when it has no owner.
func (ctl *Controller) related(rs *appsv1.ReplicaSet, pods []*corev1.Pod) []*corev1.Pod {
	uids := map[types.UID]bool{rs.UID: true}
	if ref := metav1.GetControllerOfNoCopy(rs); ref != nil {
		siblings, _ := ctl.owners.List(rs.Namespace)
		for _, s := range siblings {
			if r := metav1.GetControllerOfNoCopy(s); r != nil && r.UID == ref.UID {
				uids[s.UID] = true
			}
		}
	}
	var out []*corev1.Pod
	for _, p := range pods {
		if r := metav1.GetControllerOfNoCopy(p); r != nil && uids[r.UID] && controller.IsPodActive(p) {
			out = append(out, p)
		}
	}
	return out
}

// manage applies Manage's plan: creations in slow-start batches,
// deletions concurrently, each recorded in the expectations first.
func (ctl *Controller) manage(ctx context.Context, rs *appsv1.ReplicaSet, active, related []*corev1.Pod, now metav1.Time) error {
	k := key(rs)
	plan := Manage(rs, active, related, now)
	pods := ctl.ctx.Client.CoreV1().Pods(rs.Namespace)
	switch {
	case plan.Create > 0:
		ctl.expectations.ExpectCreations(k, plan.Create)
		var calls atomic.Int64
		_, err := SlowStartBatch(plan.Create, SlowStartInitialBatchSize, func() error {
			calls.Add(1)
			p, err := pods.Create(ctx, podFromTemplate(rs, ctl.gvk), metav1.CreateOptions{})
			if err != nil {
				// Never observed: stop waiting for it.
				ctl.expectations.CreationObserved(k)
				if apierrors.IsForbidden(err) && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
					return nil
				}
				ctl.ctx.Eventf(rs, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
				return err
			}
			ctl.ctx.Eventf(rs, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %v", p.Name)
			return nil
		})
		// The batches never started will not be observed either.
		ctl.expectations.LowerCreations(k, plan.Create-int(calls.Load()))
		if err != nil {
			return fmt.Errorf("create pods for %s: %w", k, err)
		}
	case len(plan.Delete) > 0:
		keys := make([]string, len(plan.Delete))
		for i, p := range plan.Delete {
			keys[i] = key(p)
		}
		ctl.expectations.ExpectDeletions(k, keys)
		var wg sync.WaitGroup
		errs := make([]error, len(plan.Delete))
		for i, p := range plan.Delete {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
				switch {
				case err == nil:
					ctl.ctx.Eventf(rs, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %v", p.Name)
				case !apierrors.IsNotFound(err):
					ctl.expectations.DeletionObserved(k, keys[i])
					ctl.ctx.Eventf(rs, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
					errs[i] = err
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("delete pods of %s: %w", k, err)
		}
	}
	return nil
}

// writeStatus writes st as rs's status through the owner store.
func (ctl *Controller) writeStatus(ctx context.Context, rs *appsv1.ReplicaSet, st appsv1.ReplicaSetStatus) error {
	err := ctl.owners.WriteStatus(ctx, rs, st)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// replicaSets is the OwnerStore of apps/v1 ReplicaSets.
type replicaSets struct{ c controller.Context }

func (r replicaSets) Informer() toolscache.SharedIndexInformer {
	return r.c.Informers.Apps().V1().ReplicaSets().Informer()
}

func (r replicaSets) lister() appslisters.ReplicaSetLister {
	return r.c.Informers.Apps().V1().ReplicaSets().Lister()
}

func (r replicaSets) Get(ns, name string) (*appsv1.ReplicaSet, error) {
	return r.lister().ReplicaSets(ns).Get(name)
}

func (r replicaSets) List(ns string) ([]*appsv1.ReplicaSet, error) {
	return r.lister().ReplicaSets(ns).List(labels.Everything())
}

func (r replicaSets) GetFresh(ctx context.Context, ns, name string) (*appsv1.ReplicaSet, error) {
	return r.c.Client.AppsV1().ReplicaSets(ns).Get(ctx, name, metav1.GetOptions{})
}

func (r replicaSets) WriteStatus(ctx context.Context, rs *appsv1.ReplicaSet, st appsv1.ReplicaSetStatus) error {
	if apiequality.Semantic.DeepEqual(rs.Status, st) {
		return nil
	}
	c := rs.DeepCopy()
	c.Status = st
	_, err := r.c.Client.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{})
	return err
}
