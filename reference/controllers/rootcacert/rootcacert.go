// Package rootcacert is the "root-ca-cert-publisher" controller: every
// namespace holds a ConfigMap "kube-root-ca.crt" whose "ca.crt" is the CA
// bundle of --root-ca-file, so pods can verify the API server. An edited
// or deleted one is put back; namespaces being deleted are left alone.
//
// Plan is the decision; Controller watches Namespaces and ConfigMaps
// through the shared informers and applies Plan's result.
package rootcacert

import (
	"context"
	"errors"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubelab/kubelab/reference/controllers/controller"
)

const (
	// Name is the controller's name in --controllers.
	Name = "root-ca-cert-publisher"
	// ConfigMapName is the published ConfigMap's name.
	ConfigMapName = "kube-root-ca.crt"
	// DataKey is the key of the CA bundle in the ConfigMap's data.
	DataKey = "ca.crt"
	// DescriptionAnnotation is the annotation upstream sets on the
	// ConfigMap, with Description.
	DescriptionAnnotation = "kubernetes.io/description"
	// Description is the annotation's value, as upstream's.
	Description = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."
)

// Action is what Plan decides.
type Action int

const (
	// None: the ConfigMap is as it should be (or the namespace is going).
	None Action = iota
	// Create the returned ConfigMap.
	Create
	// Update: replace the existing ConfigMap with the returned one.
	Update
)

// Plan decides the ConfigMap of namespace ns given the existing one (nil
// when absent) and the CA bundle: create it, update an existing one whose
// ca.crt or description differs (keeping its other data, labels and
// annotations), or nothing. A namespace being deleted gets nothing.
func Plan(ns *corev1.Namespace, existing *corev1.ConfigMap, ca []byte) (Action, *corev1.ConfigMap) {
	if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		return None, nil
	}
	if existing == nil {
		return Create, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: ns.Name,
				Annotations: map[string]string{DescriptionAnnotation: Description}},
			Data: map[string]string{DataKey: string(ca)},
		}
	}
	if existing.Data[DataKey] == string(ca) && existing.Annotations[DescriptionAnnotation] == Description {
		return None, nil
	}
	cm := existing.DeepCopy()
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[DataKey] = string(ca)
	cm.Annotations = maps.Clone(cm.Annotations)
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations[DescriptionAnnotation] = Description
	return Update, cm
}

// configMaps writes ConfigMaps (the clientset's, at the point of use).
type configMaps interface {
	Create(ctx context.Context, cm *corev1.ConfigMap) error
	Update(ctx context.Context, cm *corev1.ConfigMap) error
}

type clientConfigMaps struct{ c controller.Context }

func (k clientConfigMaps) Create(ctx context.Context, cm *corev1.ConfigMap) error {
	_, err := k.c.Client.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{})
	return err
}

func (k clientConfigMaps) Update(ctx context.Context, cm *corev1.ConfigMap) error {
	_, err := k.c.Client.CoreV1().ConfigMaps(cm.Namespace).Update(ctx, cm, metav1.UpdateOptions{})
	return err
}

// Controller is the root-ca-cert-publisher.
type Controller struct {
	ctx      controller.Context
	ca       []byte
	write    configMaps
	nsLister corelisters.NamespaceLister
	cmLister corelisters.ConfigMapLister
	queue    workqueue.TypedRateLimitingInterface[string]
}

// ErrNoRootCA is returned by New when the context carries no CA bundle.
var ErrNoRootCA = errors.New("root-ca-cert-publisher: no root CA (--root-ca-file, or a kubeconfig with a CA)")

// New registers the Namespace and ConfigMap informers and returns the
// controller; it needs c.RootCA.
func New(c controller.Context) (*Controller, error) {
	if len(c.RootCA) == 0 {
		return nil, ErrNoRootCA
	}
	ctl := &Controller{ctx: c, ca: c.RootCA, write: clientConfigMaps{c}, queue: c.NewQueue(Name)}
	nsInf := c.Informers.Core().V1().Namespaces()
	cmInf := c.Informers.Core().V1().ConfigMaps()
	ctl.nsLister, ctl.cmLister = nsInf.Lister(), cmInf.Lister()
	enqueueNS := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok {
			ctl.queue.Add(ns.Name)
		}
	}
	enqueueCM := func(obj any) {
		if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Name == ConfigMapName {
			ctl.queue.Add(cm.Namespace)
		}
	}
	if _, err := nsInf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: enqueueNS, UpdateFunc: func(_, n any) { enqueueNS(n) },
	}); err != nil {
		return nil, err
	}
	if _, err := cmInf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, n any) { enqueueCM(n) }, DeleteFunc: enqueueCM,
	}); err != nil {
		return nil, err
	}
	return ctl, nil
}

// Run syncs namespaces with one worker until ctx ends.
func (ctl *Controller) Run(ctx context.Context) {
	controller.RunWorkers(ctx, ctl.ctx.Log(), ctl.queue, 1, ctl.sync)
}

func (ctl *Controller) sync(ctx context.Context, name string) error {
	ns, err := ctl.nsLister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	existing, err := ctl.cmLister.ConfigMaps(name).Get(ConfigMapName)
	if apierrors.IsNotFound(err) {
		existing, err = nil, nil
	}
	if err != nil {
		return err
	}
	action, cm := Plan(ns, existing, ctl.ca)
	switch action {
	case Create:
		err = ctl.write.Create(ctx, cm)
		if apierrors.IsAlreadyExists(err) || apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
			// Already there (the informer trails) or the namespace is
			// terminating: the ConfigMap's own events bring us back.
			err = nil
		}
	case Update:
		err = ctl.write.Update(ctx, cm)
		if apierrors.IsNotFound(err) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("%s/%s: %w", name, ConfigMapName, err)
	}
	return nil
}
