package deployment

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubelab/kubelab/reference/controllers/controller"
)

// Controller is the deployment controller. Build it with New; Run runs it.
type Controller struct {
	ctx       controller.Context
	dLister   appslisters.DeploymentLister
	rsLister  appslisters.ReplicaSetLister
	podLister corelisters.PodLister
	queue     workqueue.TypedRateLimitingInterface[string]
	now       func() time.Time
}

// New registers the Deployment, ReplicaSet and Pod informers and returns
// the controller.
func New(c controller.Context) (*Controller, error) {
	ctl := &Controller{ctx: c, queue: c.NewQueue(Name), now: time.Now}
	dInf := c.Informers.Apps().V1().Deployments()
	rsInf := c.Informers.Apps().V1().ReplicaSets()
	podInf := c.Informers.Core().V1().Pods()
	ctl.dLister, ctl.rsLister, ctl.podLister = dInf.Lister(), rsInf.Lister(), podInf.Lister()
	enqueueD := func(obj any) {
		if d, ok := unwrap(obj).(*appsv1.Deployment); ok {
			ctl.queue.Add(d.Namespace + "/" + d.Name)
		}
	}
	if _, err := dInf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: enqueueD, UpdateFunc: func(_, n any) { enqueueD(n) }, DeleteFunc: enqueueD,
	}); err != nil {
		return nil, err
	}
	if _, err := rsInf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: ctl.onRS,
		UpdateFunc: func(o, n any) {
			ctl.onRS(n)
			if a, b := metav1.GetControllerOfNoCopy(o.(*appsv1.ReplicaSet)), metav1.GetControllerOfNoCopy(n.(*appsv1.ReplicaSet)); a != nil && (b == nil || a.UID != b.UID) {
				ctl.onRS(o)
			}
		},
		DeleteFunc: ctl.onRS,
	}); err != nil {
		return nil, err
	}
	if _, err := podInf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		DeleteFunc: ctl.onPodDelete,
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

// owner returns the Deployment ref names in namespace, if it still is
// that object.
func (ctl *Controller) owner(namespace string, ref *metav1.OwnerReference) *appsv1.Deployment {
	if ref == nil || ref.Kind != GVK.Kind || ref.APIVersion != GVK.GroupVersion().String() {
		return nil
	}
	d, err := ctl.dLister.Deployments(namespace).Get(ref.Name)
	if err != nil || d.UID != ref.UID {
		return nil
	}
	return d
}

func (ctl *Controller) onRS(obj any) {
	rs, ok := unwrap(obj).(*appsv1.ReplicaSet)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOfNoCopy(rs); ref != nil {
		if d := ctl.owner(rs.Namespace, ref); d != nil {
			ctl.queue.Add(d.Namespace + "/" + d.Name)
		}
		return
	}
	ds, _ := ctl.dLister.Deployments(rs.Namespace).List(labels.Everything())
	for _, d := range ds {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(rs.Labels)) {
			ctl.queue.Add(d.Namespace + "/" + d.Name)
		}
	}
}

// onPodDelete wakes a Recreate rollout waiting for old pods to go.
func (ctl *Controller) onPodDelete(obj any) {
	p, ok := unwrap(obj).(*corev1.Pod)
	if !ok {
		return
	}
	ref := metav1.GetControllerOfNoCopy(p)
	if ref == nil || ref.Kind != "ReplicaSet" {
		return
	}
	rs, err := ctl.rsLister.ReplicaSets(p.Namespace).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return
	}
	if d := ctl.owner(rs.Namespace, metav1.GetControllerOfNoCopy(rs)); d != nil && d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		ctl.queue.Add(d.Namespace + "/" + d.Name)
	}
}

// Run syncs Deployments with Workers workers until ctx ends.
func (ctl *Controller) Run(ctx context.Context) {
	controller.RunWorkers(ctx, ctl.ctx.Log(), ctl.queue, Workers, ctl.sync)
}

func (ctl *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := toolscache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("%w: %v", controller.ErrNoRetry, err)
	}
	d, err := ctl.dLister.Deployments(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if d.DeletionTimestamp != nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		ctl.ctx.Eventf(d, corev1.EventTypeWarning, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
		return fmt.Errorf("%w: deployment %s: invalid or empty selector (%v)", controller.ErrNoRetry, key, err)
	}
	rss, err := ctl.claim(ctx, d, sel)
	if err != nil {
		return err
	}
	in := Input{Deployment: d, ReplicaSets: rss, Now: metav1.NewTime(ctl.now())}
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		in.OldPodsRunning = ctl.oldPodsRunning(d, rss)
	}
	step, err := Reconcile(in)
	if err != nil {
		ctl.ctx.Eventf(d, corev1.EventTypeWarning, "InvalidDeployment", "%v", err)
		return fmt.Errorf("%w: deployment %s: %v", controller.ErrNoRetry, key, err)
	}
	if err := ctl.apply(ctx, d, step); err != nil {
		return err
	}
	if step.Requeue > 0 {
		ctl.queue.AddAfter(key, step.Requeue)
	}
	return nil
}

// claim returns the ReplicaSets d controls, adopting and releasing as
// controller.Decide says.
func (ctl *Controller) claim(ctx context.Context, d *appsv1.Deployment, sel labels.Selector) ([]*appsv1.ReplicaSet, error) {
	all, err := ctl.rsLister.ReplicaSets(d.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	patch := func(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, sub ...string) error {
		_, err := ctl.ctx.Client.AppsV1().ReplicaSets(d.Namespace).Patch(ctx, name, pt, data, opts, sub...)
		return err
	}
	var out []*appsv1.ReplicaSet
	var errs []error
	checked, canAdopt := false, false
	for _, rs := range all {
		switch controller.Decide(d, sel, rs) {
		case controller.Keep:
			out = append(out, rs)
		case controller.Adopt:
			if !checked {
				checked = true
				fresh, err := ctl.ctx.Client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
				canAdopt = err == nil && fresh.UID == d.UID && fresh.DeletionTimestamp == nil
			}
			if !canAdopt {
				continue
			}
			if err := controller.AdoptObject(ctx, patch, d, GVK, rs); err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, rs)
		case controller.Release:
			if err := controller.ReleaseObject(ctx, patch, d, rs); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return out, errors.Join(errs...)
}

// oldPodsRunning reports whether a pod of one of d's ReplicaSets other
// than the one running d's template has not terminated.
func (ctl *Controller) oldPodsRunning(d *appsv1.Deployment, rss []*appsv1.ReplicaSet) bool {
	old := map[types.UID]bool{}
	for _, rs := range rss {
		if !EqualIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			old[rs.UID] = true
		}
	}
	if len(old) == 0 {
		return false
	}
	pods, _ := ctl.podLister.Pods(d.Namespace).List(labels.Everything())
	for _, p := range pods {
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil && old[ref.UID] &&
			p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			return true
		}
	}
	return false
}

// apply writes step: the new ReplicaSet, rescaled ones (with the
// resourceVersion read, so a stale decision conflicts), deletions, the
// revision annotation and the status.
func (ctl *Controller) apply(ctx context.Context, d *appsv1.Deployment, step Step) error {
	rsc := ctl.ctx.Client.AppsV1().ReplicaSets(d.Namespace)
	if step.Create != nil {
		created, err := rsc.Create(ctx, step.Create, metav1.CreateOptions{})
		if err == nil {
			ctl.ctx.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d", created.Name, rsReplicas(created))
		}
		if err != nil {
			if !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create replicaset %s/%s: %w", d.Namespace, step.Create.Name, err)
			}
			existing, gerr := rsc.Get(ctx, step.Create.Name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			if ref := metav1.GetControllerOfNoCopy(existing); ref != nil && ref.UID == d.UID && EqualIgnoreHash(&existing.Spec.Template, &d.Spec.Template) {
				// Ours, created by an earlier sync the cache has not shown.
				return fmt.Errorf("replicaset %s/%s exists, waiting for the cache", d.Namespace, existing.Name)
			}
			// A hash collision: bump collisionCount so the next name differs.
			c := d.DeepCopy()
			n := int32(0)
			if c.Status.CollisionCount != nil {
				n = *c.Status.CollisionCount
			}
			n++
			c.Status.CollisionCount = &n
			if _, err := ctl.ctx.Client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{}); err != nil {
				return err
			}
			return fmt.Errorf("replicaset name %s collides, collisionCount now %d", step.Create.Name, n)
		}
	}
	for _, rs := range step.Update {
		before := int32(-1)
		if cached, err := ctl.rsLister.ReplicaSets(rs.Namespace).Get(rs.Name); err == nil {
			before = rsReplicas(cached)
		}
		if _, err := rsc.Update(ctx, rs, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
		}
		if after := rsReplicas(rs); before >= 0 && before != after {
			op := "up"
			if after < before {
				op = "down"
			}
			ctl.ctx.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", op, rs.Name, before, after)
		}
	}
	for _, rs := range step.Delete {
		uid := rs.UID
		if err := rsc.Delete(ctx, rs.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete old replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
		}
	}
	dc := ctl.ctx.Client.AppsV1().Deployments(d.Namespace)
	cur := d
	if step.Revision != "" && d.Annotations[RevisionAnnotation] != step.Revision {
		c := d.DeepCopy()
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[RevisionAnnotation] = step.Revision
		updated, err := dc.Update(ctx, c, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("deployment %s/%s revision: %w", d.Namespace, d.Name, err)
		}
		cur = updated
	}
	if apiequality.Semantic.DeepEqual(cur.Status, step.Status) {
		return nil
	}
	c := cur.DeepCopy()
	c.Status = step.Status
	if _, err := dc.UpdateStatus(ctx, c, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deployment %s/%s status: %w", d.Namespace, d.Name, err)
	}
	return nil
}
