package deployment

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// calculateStatus counts the pods of all ReplicaSets (upstream's
// calculateStatus) and sets the Available condition.
func calculateStatus(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, now metav1.Time) appsv1.DeploymentStatus {
	st := appsv1.DeploymentStatus{ObservedGeneration: d.Generation, CollisionCount: d.Status.CollisionCount}
	var specTotal, terminating int32
	hasTerminating := false
	for _, rs := range all {
		st.Replicas += rs.Status.Replicas
		st.ReadyReplicas += rs.Status.ReadyReplicas
		st.AvailableReplicas += rs.Status.AvailableReplicas
		specTotal += rsReplicas(rs)
		if rs.Status.TerminatingReplicas != nil {
			hasTerminating = true
			terminating += *rs.Status.TerminatingReplicas
		}
	}
	if hasTerminating {
		st.TerminatingReplicas = &terminating
	}
	if newRS != nil {
		st.UpdatedReplicas = newRS.Status.Replicas
	}
	st.UnavailableReplicas = max(0, specTotal-st.AvailableReplicas)
	st.Conditions = append(st.Conditions, d.Status.Conditions...)
	if st.AvailableReplicas >= replicasOf(d)-maxUnavailable(d) {
		setCondition(&st, appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
			Reason: ReasonMinimumAvailable, Message: "Deployment has minimum availability."}, now)
	} else {
		setCondition(&st, appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse,
			Reason: ReasonMinimumUnavailable, Message: "Deployment does not have minimum availability."}, now)
	}
	return st
}

// rolloutStatus is the Deployment's status after a step: calculateStatus,
// then the Progressing condition as upstream's syncRolloutStatus (or the
// paused/resumed one), the ReplicaFailure condition mirrored from the
// ReplicaSets, and when to look again for the progress deadline.
func rolloutStatus(d *appsv1.Deployment, all []*appsv1.ReplicaSet, created, newRS *appsv1.ReplicaSet, cond *appsv1.DeploymentCondition, now metav1.Time) (appsv1.DeploymentStatus, time.Duration) {
	if created != nil {
		newRS = created
	}
	st := calculateStatus(d, all, newRS, now)
	if d.Spec.ProgressDeadlineSeconds == nil {
		removeCondition(&st, appsv1.DeploymentProgressing)
		return st, 0
	}
	cur := getCondition(d.Status, appsv1.DeploymentProgressing)
	pausedCond := cur != nil && cur.Reason == ReasonPaused
	switch {
	case d.Spec.Paused && !pausedCond:
		setCondition(&st, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionUnknown,
			Reason: ReasonPaused, Message: "Deployment is paused"}, now)
		return st, 0
	case d.Spec.Paused:
		return st, 0
	case pausedCond:
		setCondition(&st, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionUnknown,
			Reason: ReasonResumed, Message: "Deployment is resumed"}, now)
		cur = getCondition(st, appsv1.DeploymentProgressing)
	}
	if cond != nil {
		setCondition(&st, *cond, now)
		cur = getCondition(st, appsv1.DeploymentProgressing)
	}
	what := fmt.Sprintf("Deployment %q", d.Name)
	if newRS != nil {
		what = fmt.Sprintf("ReplicaSet %q", newRS.Name)
	}
	isComplete := st.Replicas == st.UpdatedReplicas && cur != nil && cur.Reason == ReasonNewRSAvailable
	var requeue time.Duration
	if !isComplete {
		switch {
		case complete(d, st):
			setCondition(&st, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue,
				Reason: ReasonNewRSAvailable, Message: what + " has successfully progressed."}, now)
		case progressing(d.Status, st):
			c := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue,
				Reason: ReasonRSUpdated, Message: what + " is progressing.", LastUpdateTime: now, LastTransitionTime: now}
			if old := getCondition(st, appsv1.DeploymentProgressing); old != nil && old.Status == corev1.ConditionTrue {
				c.LastTransitionTime = old.LastTransitionTime
			}
			removeCondition(&st, appsv1.DeploymentProgressing)
			st.Conditions = append(st.Conditions, c)
			requeue = time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second
		case timedOut(d, st, now):
			setCondition(&st, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
				Reason: ReasonTimedOut, Message: what + " has timed out progressing."}, now)
		default:
			if c := getCondition(st, appsv1.DeploymentProgressing); c != nil && c.Reason != ReasonNewRSAvailable && c.Reason != ReasonTimedOut {
				requeue = max(time.Second, c.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds)*time.Second).Sub(now.Time)+time.Second)
			}
		}
	}
	// ReplicaFailure mirrors the ReplicaSets' (a pod that cannot be
	// created, e.g. refused by admission or quota).
	var failure *appsv1.ReplicaSetCondition
	for _, rs := range all {
		for i := range rs.Status.Conditions {
			if c := rs.Status.Conditions[i]; c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue {
				failure = &rs.Status.Conditions[i]
			}
		}
	}
	if failure != nil {
		setCondition(&st, appsv1.DeploymentCondition{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue,
			Reason: failure.Reason, Message: failure.Message}, now)
	} else {
		removeCondition(&st, appsv1.DeploymentReplicaFailure)
	}
	return st, requeue
}

// complete is upstream's DeploymentComplete: every replica updated and
// available, no old one left, the latest generation observed.
func complete(d *appsv1.Deployment, st appsv1.DeploymentStatus) bool {
	n := replicasOf(d)
	return st.UpdatedReplicas == n && st.Replicas == n && st.AvailableReplicas == n && st.ObservedGeneration >= d.Generation
}

// progressing is upstream's DeploymentProgressing: more updated, fewer
// old, more ready or more available replicas than before.
func progressing(old, cur appsv1.DeploymentStatus) bool {
	oldOld := old.Replicas - old.UpdatedReplicas
	curOld := cur.Replicas - cur.UpdatedReplicas
	return cur.UpdatedReplicas > old.UpdatedReplicas || curOld < oldOld ||
		cur.ReadyReplicas > old.ReadyReplicas || cur.AvailableReplicas > old.AvailableReplicas
}

// timedOut is upstream's DeploymentTimedOut: no progress for
// progressDeadlineSeconds since the Progressing condition's last update.
func timedOut(d *appsv1.Deployment, st appsv1.DeploymentStatus, now metav1.Time) bool {
	c := getCondition(st, appsv1.DeploymentProgressing)
	if c == nil {
		return false
	}
	switch c.Reason {
	case ReasonNewRSAvailable:
		return false
	case ReasonTimedOut:
		return true
	}
	deadline := time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second
	return c.LastUpdateTime.Add(deadline).Before(now.Time)
}

func getCondition(st appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

func removeCondition(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) {
	var kept []appsv1.DeploymentCondition
	for _, c := range st.Conditions {
		if c.Type != t {
			kept = append(kept, c)
		}
	}
	st.Conditions = kept
}

// setCondition is upstream's SetDeploymentCondition: a condition with
// the same status and reason is left as it is; one with the same status
// keeps its lastTransitionTime; times default to now.
func setCondition(st *appsv1.DeploymentStatus, c appsv1.DeploymentCondition, now metav1.Time) {
	if c.LastUpdateTime.IsZero() {
		c.LastUpdateTime = now
	}
	if c.LastTransitionTime.IsZero() {
		c.LastTransitionTime = now
	}
	if cur := getCondition(*st, c.Type); cur != nil {
		if cur.Status == c.Status && cur.Reason == c.Reason {
			return
		}
		if cur.Status == c.Status {
			c.LastTransitionTime = cur.LastTransitionTime
		}
	}
	removeCondition(st, c.Type)
	st.Conditions = append(st.Conditions, c)
}
