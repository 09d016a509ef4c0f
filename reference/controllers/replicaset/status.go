package replicaset

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubelab/kubelab/reference/controllers/controller"
)

const (
	// ReplicaFailure is the condition type set when pods could not be
	// created or deleted (upstream's appsv1.ReplicaSetReplicaFailure).
	ReplicaFailure = appsv1.ReplicaSetReplicaFailure
	// ReasonFailedCreate and ReasonFailedDelete are its reasons.
	ReasonFailedCreate = "FailedCreate"
	// ReasonFailedDelete: see ReasonFailedCreate.
	ReasonFailedDelete = "FailedDelete"
)

// CalculateStatus is rs's status given its active pods, the pods it owns
// that are being deleted (terminating), the error of this sync's pod
// creations or deletions (nil: none), and now: replicas,
// fullyLabeledReplicas (pods carrying every template label),
// readyReplicas, availableReplicas (ready for minReadySeconds),
// terminatingReplicas, observedGeneration and the ReplicaFailure
// condition (set with FailedCreate/FailedDelete on a failure, removed
// after a sync without one).
func CalculateStatus(rs *appsv1.ReplicaSet, active []*corev1.Pod, terminating int, manageErr error, now metav1.Time) appsv1.ReplicaSetStatus {
	st := *rs.Status.DeepCopy()
	tmpl := labels.SelectorFromSet(rs.Spec.Template.Labels)
	var full, ready, avail int32
	for _, p := range active {
		if tmpl.Matches(labels.Set(p.Labels)) {
			full++
		}
		if controller.IsPodReady(p) {
			ready++
			if controller.IsPodAvailable(p, rs.Spec.MinReadySeconds, now.Time) {
				avail++
			}
		}
	}
	st.Replicas, st.FullyLabeledReplicas, st.ReadyReplicas, st.AvailableReplicas = int32(len(active)), full, ready, avail
	t := int32(terminating)
	st.TerminatingReplicas = &t
	st.ObservedGeneration = rs.Generation
	var kept []appsv1.ReplicaSetCondition
	var failure *appsv1.ReplicaSetCondition
	for i := range st.Conditions {
		if st.Conditions[i].Type == ReplicaFailure {
			failure = &st.Conditions[i]
			continue
		}
		kept = append(kept, st.Conditions[i])
	}
	if manageErr != nil {
		reason := ReasonFailedDelete
		if len(active) < int(replicas(rs)) {
			reason = ReasonFailedCreate
		}
		c := appsv1.ReplicaSetCondition{Type: ReplicaFailure, Status: corev1.ConditionTrue, Reason: reason,
			Message: manageErr.Error(), LastTransitionTime: now}
		if failure != nil && failure.Status == corev1.ConditionTrue {
			c.LastTransitionTime = failure.LastTransitionTime
		}
		kept = append(kept, c)
	}
	st.Conditions = kept
	return st
}
