// Package serviceaccount is the "serviceaccount" controller: every active
// namespace holds the ServiceAccounts the controller is configured with
// (upstream's default: one named "default"). A deleted one is recreated; a
// namespace that is terminating gets none.
//
// Missing is the decision; Controller watches Namespaces and
// ServiceAccounts through the shared informers and creates what Missing
// names.
package serviceaccount

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubelab/kubelab/reference/controllers/controller"
)

// Name is the controller's name in --controllers.
const Name = "serviceaccount"

// DefaultServiceAccounts are the ServiceAccounts every namespace gets.
var DefaultServiceAccounts = []string{"default"}

// Missing returns which of wanted are absent from ns (has reports
// presence), in wanted's order; none for a namespace that is not Active
// or is being deleted.
func Missing(ns *corev1.Namespace, has func(name string) bool, wanted []string) []string {
	if ns.DeletionTimestamp != nil || (ns.Status.Phase != "" && ns.Status.Phase != corev1.NamespaceActive) {
		return nil
	}
	var out []string
	for _, n := range wanted {
		if !has(n) {
			out = append(out, n)
		}
	}
	return out
}

// saCreator creates ServiceAccounts (the clientset's, at the point of use).
type saCreator interface {
	Create(ctx context.Context, namespace string, sa *corev1.ServiceAccount) error
}

type clientCreator struct{ c controller.Context }

func (k clientCreator) Create(ctx context.Context, ns string, sa *corev1.ServiceAccount) error {
	_, err := k.c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{})
	return err
}

// Controller is the serviceaccount controller.
type Controller struct {
	ctx      controller.Context
	create   saCreator
	nsLister corelisters.NamespaceLister
	saLister corelisters.ServiceAccountLister
	queue    workqueue.TypedRateLimitingInterface[string]
}

// New registers the Namespace and ServiceAccount informers and returns the
// controller.
func New(c controller.Context) (*Controller, error) {
	ctl := &Controller{ctx: c, create: clientCreator{c}, queue: c.NewQueue(Name)}
	nsInf := c.Informers.Core().V1().Namespaces()
	saInf := c.Informers.Core().V1().ServiceAccounts()
	ctl.nsLister, ctl.saLister = nsInf.Lister(), saInf.Lister()
	enqueueNS := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok {
			ctl.queue.Add(ns.Name)
		}
	}
	if _, err := nsInf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: enqueueNS, UpdateFunc: func(_, n any) { enqueueNS(n) },
	}); err != nil {
		return nil, err
	}
	if _, err := saInf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if sa, ok := obj.(*corev1.ServiceAccount); ok {
				ctl.queue.Add(sa.Namespace)
			}
		},
	}); err != nil {
		return nil, err
	}
	return ctl, nil
}

// Run syncs namespaces with one worker until ctx ends.
func (ctl *Controller) Run(ctx context.Context) {
	controller.RunWorkers(ctx, ctl.ctx.Log(), ctl.queue, 1, ctl.sync)
}

// sync creates the namespace's missing ServiceAccounts.
func (ctl *Controller) sync(ctx context.Context, name string) error {
	ns, err := ctl.nsLister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	has := func(sa string) bool {
		_, err := ctl.saLister.ServiceAccounts(name).Get(sa)
		return err == nil
	}
	for _, sa := range Missing(ns, has, DefaultServiceAccounts) {
		err := ctl.create.Create(ctx, name, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}})
		switch {
		case err == nil, apierrors.IsAlreadyExists(err):
		case apierrors.IsForbidden(err) || apierrors.IsNotFound(err):
			// The namespace is terminating or gone: nothing to do.
		default:
			return fmt.Errorf("create serviceaccount %s/%s: %w", name, sa, err)
		}
	}
	return nil
}
