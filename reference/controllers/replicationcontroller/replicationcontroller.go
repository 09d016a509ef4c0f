// Package replicationcontroller is the "replicationcontroller" controller:
// ReplicationControllers (core/v1) get the replicaset controller's
// behaviour — expectations, adoption and release, slow start, deletion
// ranking, status — as upstream, which runs its ReplicaSet code on
// ReplicationControllers converted to ReplicaSets. ToReplicaSet and
// StatusFromReplicaSet are that conversion; the rest is
// replicaset.NewWithOwners over a store of ReplicationControllers.
package replicationcontroller

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/kubelab/kubelab/reference/controllers/controller"
	"github.com/kubelab/kubelab/reference/controllers/replicaset"
)

// Name is the controller's name in --controllers.
const Name = "replicationcontroller"

// GVK is the ReplicationController's group, version and kind (its pods'
// controllerRef).
var GVK = schema.GroupVersionKind{Version: "v1", Kind: "ReplicationController"}

// New registers the ReplicationController and Pod informers and returns
// the controller.
func New(c controller.Context) (*replicaset.Controller, error) {
	return replicaset.NewWithOwners(c, Name, GVK, store{c})
}

// ToReplicaSet is rc as a ReplicaSet: same metadata, replicas,
// minReadySeconds, template (empty when nil) and status, the selector map
// as matchLabels.
func ToReplicaSet(rc *corev1.ReplicationController) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{ObjectMeta: *rc.ObjectMeta.DeepCopy()}
	rs.Spec.Replicas = rc.Spec.Replicas
	rs.Spec.MinReadySeconds = rc.Spec.MinReadySeconds
	rs.Spec.Selector = &metav1.LabelSelector{MatchLabels: rc.Spec.Selector}
	if rc.Spec.Template != nil {
		rs.Spec.Template = *rc.Spec.Template.DeepCopy()
	}
	st := rc.Status
	rs.Status = appsv1.ReplicaSetStatus{Replicas: st.Replicas, FullyLabeledReplicas: st.FullyLabeledReplicas,
		ReadyReplicas: st.ReadyReplicas, AvailableReplicas: st.AvailableReplicas, ObservedGeneration: st.ObservedGeneration}
	for _, c := range st.Conditions {
		rs.Status.Conditions = append(rs.Status.Conditions, appsv1.ReplicaSetCondition{Type: appsv1.ReplicaSetConditionType(c.Type),
			Status: c.Status, LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message})
	}
	return rs
}

// StatusFromReplicaSet is a ReplicaSet status as a ReplicationController's
// (terminatingReplicas has no counterpart and is dropped).
func StatusFromReplicaSet(st appsv1.ReplicaSetStatus) corev1.ReplicationControllerStatus {
	out := corev1.ReplicationControllerStatus{Replicas: st.Replicas, FullyLabeledReplicas: st.FullyLabeledReplicas,
		ReadyReplicas: st.ReadyReplicas, AvailableReplicas: st.AvailableReplicas, ObservedGeneration: st.ObservedGeneration}
	for _, c := range st.Conditions {
		out.Conditions = append(out.Conditions, corev1.ReplicationControllerCondition{Type: corev1.ReplicationControllerConditionType(c.Type),
			Status: c.Status, LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message})
	}
	return out
}

// store is the replicaset.OwnerStore of ReplicationControllers.
type store struct{ c controller.Context }

var _ replicaset.OwnerStore = store{}

func (s store) Informer() toolscache.SharedIndexInformer {
	return s.c.Informers.Core().V1().ReplicationControllers().Informer()
}

func (s store) Get(ns, name string) (*appsv1.ReplicaSet, error) {
	rc, err := s.c.Informers.Core().V1().ReplicationControllers().Lister().ReplicationControllers(ns).Get(name)
	if err != nil {
		return nil, err
	}
	return ToReplicaSet(rc), nil
}

func (s store) List(ns string) ([]*appsv1.ReplicaSet, error) {
	rcs, err := s.c.Informers.Core().V1().ReplicationControllers().Lister().ReplicationControllers(ns).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	out := make([]*appsv1.ReplicaSet, 0, len(rcs))
	for _, rc := range rcs {
		out = append(out, ToReplicaSet(rc))
	}
	return out, nil
}

func (s store) GetFresh(ctx context.Context, ns, name string) (*appsv1.ReplicaSet, error) {
	rc, err := s.c.Client.CoreV1().ReplicationControllers(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return ToReplicaSet(rc), nil
}

func (s store) WriteStatus(ctx context.Context, cached *appsv1.ReplicaSet, st appsv1.ReplicaSetStatus) error {
	rc, err := s.c.Informers.Core().V1().ReplicationControllers().Lister().ReplicationControllers(cached.Namespace).Get(cached.Name)
	if err != nil {
		return err
	}
	want := StatusFromReplicaSet(st)
	if apiequality.Semantic.DeepEqual(rc.Status, want) {
		return nil
	}
	c := rc.DeepCopy()
	c.Status = want
	_, err = s.c.Client.CoreV1().ReplicationControllers(rc.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{})
	return err
}
